/**
 * The behaviour every EventStore implementation must show (as abstract-level ships its suite):
 * run `eventStoreSuite('my store', async () => openMyStore())` in a vitest file. Each test asks
 * `make` for a fresh, empty store and closes it.
 */
import { ConcurrencyError, type EventStore, type RecordedEvent } from '@xsmeta/core';
import { describe, expect, it } from 'vitest';

async function collect(it: AsyncIterable<RecordedEvent>): Promise<RecordedEvent[]> {
  const out: RecordedEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const ev = (n: number) => ({
  type: 'BackupPartsCaptured',
  data: { runId: `r${n}`, vmCount: n, templateCount: 0, rawBytes: n * 10 },
});

/** Polls `ok` until it holds (a generous bound: the machine may be busy), never a fixed sleep. */
async function until(ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** The shared behaviour suite every EventStore implementation runs. */
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
      await s.appendToStream('b', [ev(3)]);
      await s.appendToStream('a', [ev(4)]);
      await until(() => seen.length >= 3, 'three deliveries');
      sub.close();
      expect(await sub.done).toBeNull();
      await s.appendToStream('a', [ev(5)]);
      // A second subscriber sees 5: had the first been fed, it would have been by now.
      const after: number[] = [];
      const sub2 = s.subscribe(5, (e) => {
        after.push(e.position);
      });
      await until(() => after.length === 1, 'the second subscriber');
      sub2.close();
      expect(seen).toEqual([2, 3, 4]);
      await s.close();
    });

    it('a handler that throws stops its subscription with the error, and nothing leaks', async () => {
      const s = await make();
      const unhandled: unknown[] = [];
      const onUnhandled = (e: unknown) => unhandled.push(e);
      process.on('unhandledRejection', onUnhandled);
      try {
        await s.appendToStream('a', [ev(1), ev(2), ev(3)]);
        const seen: number[] = [];
        const sub = s.subscribe(1, async (e) => {
          seen.push(e.position);
          if (e.position === 2) throw new Error('handler failed at 2');
        });
        const err = await sub.done;
        expect(err?.message).toBe('handler failed at 2');
        await s.appendToStream('a', [ev(4)]);
        const sync = s.subscribe(1, (e) => {
          if (e.position === 1) throw new Error('sync throw');
        });
        expect((await sync.done)?.message).toBe('sync throw');
        // Give any stray rejection a turn of the event loop to surface.
        await new Promise((r) => setImmediate(r));
        expect(seen).toEqual([1, 2]);
        expect(unhandled).toEqual([]);
      } finally {
        process.off('unhandledRejection', onUnhandled);
        await s.close();
      }
    });

    it("readStream('a') never returns another stream's events; bad names are refused", async () => {
      const s = await make();
      await s.appendToStream('a', [ev(1)]);
      await expect(s.appendToStream('a!b', [ev(2)])).rejects.toMatchObject({
        code: 'STREAM_NAME_INVALID',
      });
      await s.appendToStream('a-b', [ev(3)]);
      await s.appendToStream('ab', [ev(4)]);
      expect((await collect(s.readStream('a'))).map((e) => e.stream)).toEqual(['a']);
      for (const bad of ['', 'a!b', 'a b', '-a', 'x'.repeat(201), 'a\u0000', 'é'])
        await expect(s.appendToStream(bad, [ev(5)])).rejects.toMatchObject({
          code: 'STREAM_NAME_INVALID',
        });
      await expect(collect(s.readStream('a!b'))).rejects.toMatchObject({
        code: 'STREAM_NAME_INVALID',
      });
      await s.close();
    });

    it('reading backwards from past the end starts at the last event', async () => {
      const s = await make();
      await s.appendToStream('a', [ev(1), ev(2), ev(3)]);
      const back = await collect(
        s.readStream('a', { direction: 'backwards', from: 10, maxCount: 2 }),
      );
      expect(back.map((e) => e.version)).toEqual([2, 1]);
      const all = await collect(s.readStream('a', { direction: 'backwards', from: 99 }));
      expect(all.map((e) => e.version)).toEqual([2, 1, 0]);
      expect(await collect(s.readStream('a', { from: 10 }))).toEqual([]);
      await s.close();
    });

    it('gives every event an id; an append retried with the same ids writes nothing twice', async () => {
      const s = await make();
      const first = await s.appendToStream(
        'r',
        [
          { ...ev(1), id: 'run-1:0' },
          { ...ev(2), id: 'run-1:1' },
        ],
        { expectedVersion: 'no_stream' },
      );
      // The retry of an append whose answer was lost: same ids, same expected version.
      const again = await s.appendToStream(
        'r',
        [
          { ...ev(1), id: 'run-1:0' },
          { ...ev(2), id: 'run-1:1' },
        ],
        { expectedVersion: 'no_stream' },
      );
      expect(again).toEqual(first);
      await s.appendToStream('r', [ev(3)], { expectedVersion: 1 });
      const read = await collect(s.readStream('r'));
      expect(read.map((e) => e.id).slice(0, 2)).toEqual(['run-1:0', 'run-1:1']);
      expect(read).toHaveLength(3);
      expect(new Set(read.map((e) => e.id)).size).toBe(3);
      expect(read[2]!.id).toMatch(/^\S{1,100}$/);
      await expect(s.appendToStream('other', [{ ...ev(4), id: 'run-1:0' }])).rejects.toMatchObject({
        code: 'EVENT_ID_CONFLICT',
      });
      await expect(
        s.appendToStream('r', [
          { ...ev(4), id: 'run-1:1' },
          { ...ev(5), id: 'fresh' },
        ]),
      ).rejects.toMatchObject({ code: 'EVENT_ID_CONFLICT' });
      expect((await collect(s.readAll())).length).toBe(3);
      await s.close();
    });

    it('keeps per-event metadata (run, host, process) for correlation', async () => {
      const s = await make();
      const metadata = { runId: 'r1', host: 'xs1', pid: 4242, processStart: '123456' };
      await s.appendToStream('m', [{ ...ev(1), metadata }, ev(2)]);
      const [a, b] = await collect(s.readStream('m'));
      expect(a!.metadata).toEqual(metadata);
      expect(b!.metadata).toEqual({});
      const [c] = await collect(s.readAll({ maxCount: 1 }));
      expect(c!.metadata).toEqual(metadata);
      await s.close();
    });

    it('refuses use after close', async () => {
      const s = await make();
      await s.close();
      await expect(s.appendToStream('a', [ev(1)])).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    });
  });
}
