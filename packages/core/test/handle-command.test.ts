import { describe, expect, it } from 'vitest';
import {
  ConcurrencyError,
  type EventStore,
  handleCommand,
  MemoryEventStore,
  scheduleDecider,
} from '../src/index.js';

const set = (to: string) => ({ type: 'SetSchedule' as const, to, by: 'root', at: 't' });

/** A store where another writer appends to `stream` right after each of the first n reads. */
function racing(inner: MemoryEventStore, stream: string, n: number, other: () => Promise<void>) {
  let left = n;
  const store: EventStore = {
    appendToStream: (...a) => inner.appendToStream(...a),
    readAll: (o) => inner.readAll(o),
    subscribe: (p, h) => inner.subscribe(p, h),
    close: () => inner.close(),
    async *readStream(s, o) {
      yield* inner.readStream(s, o);
      if (s === stream && left-- > 0) await other();
    },
  };
  return store;
}

describe('handleCommand', () => {
  it('reads and folds the stream, decides, appends at the version read, with metadata', async () => {
    const s = new MemoryEventStore();
    const r1 = await handleCommand(s, 'schedule', scheduleDecider, set('daily'), {
      metadata: { runId: 'x', pid: 7 },
    });
    expect(r1.events.map((e) => e.type)).toEqual(['ScheduleChanged']);
    expect(r1.version).toBe(0);
    expect(r1.state.frequency).toBe('daily');
    // Decided on the folded state: the same frequency again is no event.
    const r2 = await handleCommand(s, 'schedule', scheduleDecider, set('daily'));
    expect(r2.events).toEqual([]);
    const stored = [];
    for await (const e of s.readStream('schedule')) stored.push(e);
    expect(stored).toHaveLength(1);
    expect(stored[0]!.metadata).toEqual({ runId: 'x', pid: 7 });
  });

  it('on a version conflict reads again and decides on what the other writer appended', async () => {
    const inner = new MemoryEventStore();
    const store = racing(inner, 'schedule', 1, async () => {
      await inner.appendToStream('schedule', [
        { type: 'ScheduleChanged', data: { from: 'never', to: 'weekly', by: 'cron', at: 't' } },
      ]);
    });
    // The command depends on the state: it must see 'weekly' the second time.
    const seen: string[] = [];
    const r = await handleCommand(store, 'schedule', scheduleDecider, (st) => {
      seen.push(st.frequency);
      return set('monthly');
    });
    expect(seen).toEqual(['never', 'weekly']);
    expect(r.events).toEqual([
      { type: 'ScheduleChanged', data: { from: 'weekly', to: 'monthly', by: 'root', at: 't' } },
    ]);
    expect(r.version).toBe(1);
  });

  it('gives up after its retries with the conflict', async () => {
    const inner = new MemoryEventStore();
    let n = 0;
    const store = racing(inner, 'schedule', 100, async () => {
      await inner.appendToStream('schedule', [
        {
          type: 'ScheduleChanged',
          data: { from: 'x', to: n++ % 2 ? 'daily' : 'weekly', by: 'cron', at: 't' },
        },
      ]);
    });
    await expect(
      handleCommand(store, 'schedule', scheduleDecider, set('monthly'), { retries: 2 }),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(n).toBe(3);
  });

  it('a stale known state conflicts and is replaced by a fresh read', async () => {
    const s = new MemoryEventStore();
    const first = await handleCommand(s, 'schedule', scheduleDecider, set('daily'));
    await handleCommand(s, 'schedule', scheduleDecider, set('weekly'));
    const r = await handleCommand(s, 'schedule', scheduleDecider, set('weekly'), {
      known: { state: first.state, version: first.version },
    });
    expect(r.events).toEqual([]);
    expect(r.state.frequency).toBe('weekly');
  });

  it('initial states are fresh objects: one fold cannot change another', () => {
    const a = scheduleDecider.initialState();
    (a as { frequency: string }).frequency = 'daily';
    expect(scheduleDecider.initialState().frequency).toBe('never');
  });
});
