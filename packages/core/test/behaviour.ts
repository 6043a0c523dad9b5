import { describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { ConcurrencyError, type EventStore, type RecordedEvent } from '../src/index.js';

async function collect(it: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const ev = (n: number) => ({
  type: 'BackupPartsCaptured',
  data: { runId: `r${n}`, vmCount: n, templateCount: 0, rawBytes: n * 10 },
});

/** The shared behaviour suite every EventStore implementation runs (cf. abstract-level's). */
export function eventStoreSuite(name: string, make: () => Promise<EventStore>): void {
  describe(`EventStore behaviour: ${name}`, () => {
    it('appends and reads a stream forwards and backwards with versions and positions', async () => {
      const s = await make();
      const r = await s.appendToStream('a', [ev(1), ev(2)], { expectedVersion: 'no_stream' });
      expect(r).toEqual({ nextExpectedVersion: 1, lastPosition: 2 });
      await s.appendToStream('b', [ev(3)]);
      await s.appendToStream('a', [ev(4)], { expectedVersion: 1 });
      const fwd = await collect(s.readStream('a'));
      expect(
        fwd.map((e) => [e.version, e.position, (e.data as { vmCount: number }).vmCount]),
      ).toEqual([
        [0, 1, 1],
        [1, 2, 2],
        [2, 4, 4],
      ]);
      const back = await collect(s.readStream('a', { direction: 'backwards', maxCount: 2 }));
      expect(back.map((e) => e.version)).toEqual([2, 1]);
      expect((await collect(s.readStream('a', { from: 1 }))).map((e) => e.version)).toEqual([1, 2]);
      expect(await collect(s.readStream('missing'))).toEqual([]);
      expect(fwd[0]!.at).toMatch(/^\d{4}-\d{2}-\d{2}T/);
      await s.close();
    });

    it('reads everything in global order from a position', async () => {
      const s = await make();
      for (let i = 1; i <= 5; i++) await s.appendToStream(`s${i % 2}`, [ev(i)]);
      expect((await collect(s.readAll())).map((e) => e.position)).toEqual([1, 2, 3, 4, 5]);
      expect((await collect(s.readAll({ fromPosition: 4 }))).map((e) => e.position)).toEqual([
        4, 5,
      ]);
      expect(
        (await collect(s.readAll({ fromPosition: 2, maxCount: 2 }))).map((e) => e.position),
      ).toEqual([2, 3]);
      await s.close();
    });

    it('enforces expected versions with a typed conflict', async () => {
      const s = await make();
      await s.appendToStream('x', [ev(1)], { expectedVersion: 'no_stream' });
      await expect(
        s.appendToStream('x', [ev(2)], { expectedVersion: 'no_stream' }),
      ).rejects.toBeInstanceOf(ConcurrencyError);
      await expect(s.appendToStream('x', [ev(2)], { expectedVersion: 5 })).rejects.toMatchObject({
        code: 'WRONG_EXPECTED_VERSION',
      });
      await expect(s.appendToStream('y', [ev(2)], { expectedVersion: 0 })).rejects.toMatchObject({
        code: 'WRONG_EXPECTED_VERSION',
      });
      await s.appendToStream('x', [ev(2)], { expectedVersion: 'any' });
      expect((await collect(s.readStream('x'))).length).toBe(2);
      await s.close();
    });

    it('detects concurrent writers: of two appends at the same version, exactly one wins', async () => {
      const s = await make();
      await s.appendToStream('c', [ev(0)]);
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          s.appendToStream('c', [ev(i)], { expectedVersion: 0 }),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((await collect(s.readStream('c'))).length).toBe(2);
      await s.close();
    });

    it('subscribes: catch-up, then live, in order, without duplicates', async () => {
      const s = await make();
      await s.appendToStream('a', [ev(1), ev(2)]);
      const seen: number[] = [];
      const sub = s.subscribe(2, (e) => {
        seen.push(e.position);
      });
      // A second subscription, opened after the first, tells when an event has been handed out.
      const probed: number[] = [];
      const probe = s.subscribe(1, (e) => {
        probed.push(e.position);
      });
      await s.appendToStream('b', [ev(3)]);
      await s.appendToStream('a', [ev(4)]);
      await until(() => seen.length >= 3, 'the first subscription to see position 4');
      sub.close();
      await s.appendToStream('a', [ev(5)]);
      await until(() => probed.includes(5), 'the probe to see position 5');
      await new Promise((r) => setImmediate(r));
      probe.close();
      expect(seen).toEqual([2, 3, 4]);
      expect(probed).toEqual([1, 2, 3, 4, 5]);
      await s.close();
    });

    it('refuses use after close', async () => {
      const s = await make();
      await s.close();
      await expect(s.appendToStream('a', [ev(1)])).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    });
  });
}
