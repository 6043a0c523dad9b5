import { describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  type CheckpointPort,
  type EventStore,
  MemoryEventStore,
  type RecordedEvent,
  RUN_HISTORY_VERSION,
  readProjection,
  runHistory,
  runHistoryProjection,
} from '../src/index.js';

const owner = (pid: number) => ({ host: 'xs1', pid, processStart: '100', boot: 'b1' });
const started = (runId: string) => ({
  type: 'BackupStarted',
  data: { runId, poolUuid: 'p', srUuid: 'sr1', vdiUuid: 'v', keep: 25, trigger: 'manual' },
});
const captured = (runId: string) => ({
  type: 'BackupPartsCaptured',
  data: { runId, vmCount: 7, templateCount: 2, rawBytes: 10 },
});

async function fill(s: MemoryEventStore) {
  await s.appendToStream('backup-a', [started('a'), captured('a')], {});
  await s.appendToStream('backup-a', [
    {
      type: 'BackupWritten',
      data: { runId: 'a', srUuid: 'sr1', seq: 4, vmCount: 7, templateCount: 2, evicted: [] },
    },
  ]);
  // Killed after capture: its process (pid 2) is gone.
  await s.appendToStream('backup-b', [
    { ...started('b'), metadata: owner(2) },
    { ...captured('b'), metadata: owner(2) },
  ]);
  // Still running (pid 3 alive).
  await s.appendToStream('restore-c', [
    {
      type: 'RestoreRequested',
      data: { runId: 'c', srUuid: 'sr1', seq: 4, dryRun: false },
      metadata: owner(3),
    },
    { type: 'VmRestored', data: { runId: 'c', vmUuid: 'v1' }, metadata: owner(3) },
    { type: 'VmRestoreFailed', data: { runId: 'c', vmUuid: 'v2' }, metadata: owner(3) },
  ]);
  await s.appendToStream('schedule', [
    { type: 'ScheduleChanged', data: { from: 'never', to: 'daily', by: 'root', at: 't' } },
  ]);
}

async function history(s: EventStore) {
  let st = structuredClone(runHistoryProjection.initial);
  for await (const e of s.readAll()) st = runHistoryProjection.apply(st, e);
  return runHistory(st, (o) => o.pid === 2);
}

describe('run history', () => {
  it('one summary per run, newest first; a run whose process is gone is ABANDONED with what it did', async () => {
    const s = new MemoryEventStore();
    await fill(s);
    const h = await history(s);
    expect(h.map((r) => [r.kind, r.runId, r.outcome])).toEqual([
      ['restore', 'c', 'RUNNING'],
      ['backup', 'b', 'ABANDONED'],
      ['backup', 'a', 'SUCCESS'],
    ]);
    expect(h[1]).toMatchObject({
      srUuid: 'sr1',
      vmCount: 7,
      templateCount: 2,
      lastEvent: 'BackupPartsCaptured',
      endedAt: null,
      owner: owner(2),
    });
    expect(h[0]).toMatchObject({ restored: 1, errors: 1, seq: 4 });
    expect(h[2]).toMatchObject({ seq: 4, endedAt: expect.any(String), events: 3 });
  });

  it('interrupted and failed runs keep their code', async () => {
    const s = new MemoryEventStore();
    await s.appendToStream('backup-d', [
      started('d'),
      {
        type: 'BackupFailed',
        data: { runId: 'd', srUuid: 'sr1', code: 'INTERRUPTED', reason: 'SIGTERM' },
      },
    ]);
    await s.appendToStream('backup-e', [
      started('e'),
      { type: 'BackupFailed', data: { runId: 'e', srUuid: 'sr1', code: 'XAPI', reason: 'down' } },
    ]);
    const h = await history(s);
    expect(h.map((r) => [r.runId, r.outcome, r.code])).toEqual([
      ['e', 'FAILED', 'XAPI'],
      ['d', 'INTERRUPTED', 'INTERRUPTED'],
    ]);
  });
});

/** A store that counts the events its readAll hands out. */
function counting(inner: EventStore) {
  const c = { read: 0 };
  const store: EventStore = {
    appendToStream: (...a) => inner.appendToStream(...a),
    readStream: (...a) => inner.readStream(...a),
    subscribe: (...a) => inner.subscribe(...a),
    close: () => inner.close(),
    async *readAll(o) {
      for await (const e of inner.readAll(o)) {
        c.read++;
        yield e;
      }
    },
  };
  return { store, c };
}

function memoryCheckpoints(): CheckpointPort & { saved: Map<string, Checkpoint<unknown>> } {
  const saved = new Map<string, Checkpoint<unknown>>();
  return {
    saved,
    load: async (n) => (saved.has(n) ? structuredClone(saved.get(n)) : null),
    save: async (n, c) => {
      saved.set(n, structuredClone(c));
    },
  };
}

describe('checkpointed projections', () => {
  const at = (checkpoints: CheckpointPort) => ({
    name: 'runs',
    version: RUN_HISTORY_VERSION,
    checkpoints,
  });

  it('reads only the events after the checkpoint, and the result equals a full rebuild', async () => {
    const inner = new MemoryEventStore();
    await fill(inner);
    const { store, c } = counting(inner);
    const cp = memoryCheckpoints();
    await readProjection(store, runHistoryProjection, at(cp));
    expect(c.read).toBe(9);
    expect(cp.saved.get('runs')?.position).toBe(9);
    await inner.appendToStream('backup-f', [started('f')]);
    c.read = 0;
    const st = await readProjection(store, runHistoryProjection, at(cp));
    // The event at the checkpoint (to check it) and the one new event.
    expect(c.read).toBe(2);
    let full = structuredClone(runHistoryProjection.initial);
    for await (const e of inner.readAll()) full = runHistoryProjection.apply(full, e);
    expect(st).toEqual(full);
  });

  it('rebuilds when the checkpoint is absent, of another version, damaged or of another log', async () => {
    const a = new MemoryEventStore();
    await fill(a);
    const cp = memoryCheckpoints();
    await readProjection(a, runHistoryProjection, at(cp));
    // Another log of the same length (the state folder was restored from elsewhere).
    const b = new MemoryEventStore();
    await fill(b);
    const st = await readProjection(b, runHistoryProjection, at(cp));
    expect(cp.saved.get('runs')?.lastId).not.toBe(undefined);
    const lastB = [] as RecordedEvent[];
    for await (const e of b.readAll()) lastB.push(e);
    expect(cp.saved.get('runs')?.lastId).toBe(lastB.at(-1)!.id);
    expect(Object.keys(st.runs)).toHaveLength(3);
    for (const junk of [
      { version: RUN_HISTORY_VERSION + 1, position: 9, lastId: lastB.at(-1)!.id, state: {} },
      { version: RUN_HISTORY_VERSION, position: -1, lastId: null, state: {} },
      'garbage',
      { version: RUN_HISTORY_VERSION, position: 99, lastId: 'x', state: { runs: {} } },
    ]) {
      const bad: CheckpointPort = { load: async () => junk, save: async () => {} };
      const r = await readProjection(b, runHistoryProjection, at(bad));
      expect(Object.keys(r.runs)).toHaveLength(3);
    }
  });
});
