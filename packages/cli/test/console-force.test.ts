import { expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { resolveSettings } from '../src/config.js';
import { consoleServices } from '../src/console.js';
import { capture, pool, withEnv } from './support.js';

it("the console's restore replaces existing VMs when asked to (force), and only then", async () => {
  const p = await pool({ vms: 3 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    const list = capture();
    await xsmeta(['list', '--json'], list);
    const { seq, srUuid } = (JSON.parse(list.stdout[0]!) as { seq: number; srUuid: string }[])[0]!;
    const services = consoleServices(resolveSettings({}));
    const run = (force: boolean) =>
      services.restore(
        { srUuid, seq, mode: 'all', dryRun: false, ...(force ? { force } : {}) },
        () => {},
        new AbortController().signal,
      );
    // The VMs are all still in the pool: without force each one is an error.
    const plain = await run(false);
    expect(plain.restored).toBe(0);
    expect(plain.errors.length).toBeGreaterThan(0);
    const forced = await run(true);
    expect(forced.errors).toEqual([]);
    expect(forced.restored).toBe(plain.errors.length);
  });
  await p.close();
}, 60_000);

it("the console's schedule screen gets the default SR's name as well as its uuid", async () => {
  const p = await pool({ vms: 2 });
  await withEnv(p.env, async () => {
    const services = consoleServices(resolveSettings({}));
    await services.setSchedule('weekly');
    const st = await services.getSchedule();
    const srs = await services.listSrs();
    const def = srs.find((sr) => sr.isDefault)!;
    expect(st.srUuid).toBe(def.uuid);
    expect(st.srName).toBe(def.name);
    expect(def.name).not.toBe('');
  });
  await p.close();
}, 60_000);
