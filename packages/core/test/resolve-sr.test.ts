import { describe, expect, it } from 'vitest';
import { errorCode, resolveSr } from '../src/index.js';

/** A pool port that counts how often it is asked. */
function poolWith(defaultSrUuid: string | null) {
  let asked = 0;
  return {
    port: {
      pool: async () => {
        asked++;
        return { uuid: 'p', defaultSrUuid };
      },
    },
    asked: () => asked,
  };
}

describe('resolveSr: the SR named, else the pool default, else NO_DEFAULT_SR', () => {
  it('takes the SR named without asking the pool', async () => {
    const p = poolWith('default');
    expect(await resolveSr(p.port, 'named')).toBe('named');
    expect(p.asked()).toBe(0);
  });

  it("takes the pool's default SR when none is named", async () => {
    const p = poolWith('default');
    expect(await resolveSr(p.port, undefined)).toBe('default');
    expect(await resolveSr(p.port, '')).toBe('default');
    expect(p.asked()).toBe(2);
  });

  it('fails with NO_DEFAULT_SR, pointing to -u / --sr, when there is neither', async () => {
    const e = await resolveSr(poolWith(null).port, null).catch((x: unknown) => x as Error);
    expect(errorCode(e)).toBe('NO_DEFAULT_SR');
    expect((e as Error).message).toBe(
      'the pool has no default SR: name one with -u SR_UUID (xsmeta: --sr)',
    );
  });
});
