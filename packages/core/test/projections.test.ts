import { expect, it } from 'vitest';
import {
  catalogueProjection,
  historyProjection,
  lastResultProjection,
  MemoryEventStore,
  rebuild,
  scheduleProjection,
  scheduleSummary,
} from '../src/index.js';

it('projections rebuild from the log', async () => {
  const s = new MemoryEventStore({ now: () => new Date('2026-11-25T10:00:00Z') });
  const w = (seq: number, evicted: number[]) => ({
    type: 'BackupWritten',
    data: {
      runId: `r${seq}`,
      srUuid: 'sr1',
      vdiUuid: 'v',
      seq,
      date: `d${seq}`,
      vmCount: 3,
      templateCount: 1,
      rawBytes: 100,
      storedBytes: 10,
      formatVersion: 1,
      evicted,
    },
  });
  await s.appendToStream('backup-1', [w(1, [])]);
  await s.appendToStream('backup-2', [w(2, [])]);
  await s.appendToStream('backup-3', [w(3, [1])]);
  await s.appendToStream('backup-4', [
    { type: 'BackupFailed', data: { runId: 'r4', srUuid: 'sr2', code: 'XAPI', reason: 'down' } },
  ]);
  await s.appendToStream('schedule', [
    { type: 'ScheduleChanged', data: { from: 'never', to: 'weekly', by: 'root', at: 't' } },
  ]);
  await s.appendToStream('schedule', [
    { type: 'ScheduledRunStarted', data: { slot: '2026-11-22T02:00:00.000Z', runId: 'r5' } },
    {
      type: 'ScheduledRunFinished',
      data: {
        slot: '2026-11-22T02:00:00.000Z',
        runId: 'r5',
        outcome: 'failure',
        srUuid: 'sr1',
        error: 'boom',
      },
    },
  ]);
  const cat = await rebuild(s, catalogueProjection);
  expect(cat.get('sr1')!.map((e) => e.seq)).toEqual([2, 3]);
  const last = await rebuild(s, lastResultProjection);
  expect(last.get('sr2')).toMatchObject({ outcome: 'failure', detail: 'XAPI: down' });
  expect(last.get('sr1')).toMatchObject({ outcome: 'success' });
  const hist = await rebuild(s, historyProjection);
  expect(hist.map((h) => h.position)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  // A second rebuild in the same process (the console's) starts from nothing again.
  expect((await rebuild(s, historyProjection)).map((h) => h.position)).toEqual([
    1, 2, 3, 4, 5, 6, 7,
  ]);
  expect([...(await rebuild(s, catalogueProjection)).get('sr1')!].map((e) => e.seq)).toEqual([
    2, 3,
  ]);
  const sched = await rebuild(s, scheduleProjection);
  const sum = scheduleSummary(sched, new Date('2026-11-25T10:00:00Z'), 'sr1');
  expect(sum).toEqual({
    frequency: 'weekly',
    srUuid: 'sr1',
    nextRunAt: '2026-11-29T02:00:00.000Z',
    lastRun: {
      at: '2026-11-25T10:00:00.000Z',
      slot: '2026-11-22T02:00:00.000Z',
      outcome: 'failure',
      srUuid: 'sr1',
      error: 'boom',
    },
  });
});
