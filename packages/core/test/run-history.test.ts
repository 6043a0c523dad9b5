import { describe, expect, it } from 'vitest';
import {
  type EventStore,
  MemoryEventStore,
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
