import { describe, expect, it } from 'vitest';
import type { BackupResult, SrChoice } from '../services.js';
import { folder, press, srChoice } from '../test-support/machines.js';
import {
  type BackupAction,
  type BackupState,
  backupReducer,
  backupWork,
  initialBackup,
} from './backup.js';

const when = folder<BackupState, BackupAction>(backupReducer);
const sr = (uuid: string, hasBackupDisk: boolean, isDefault = false): SrChoice =>
  srChoice(uuid, { hasBackupDisk, isDefault });
const SRS = [sr('a', false), sr('b', true, true), sr('c', true)];
const RESULT: BackupResult = {
  seq: 4,
  date: '2025-03-01-10-01-00',
  vmCount: 4,
  templateCount: 1,
  storedBytes: 9004,
  rawBytes: 40004,
};
const picking = when(initialBackup, { type: 'srsLoaded', req: 1, srs: SRS });

describe('backup machine', () => {
  it('Given it opens, Then it lists the SRs, and starts on the default SR', () => {
    expect(backupWork(initialBackup)).toEqual({ kind: 'listSrs', req: 1 });
    expect(picking).toMatchObject({ kind: 'pickSr', cursor: 1 });
    expect(backupWork(picking)).toBeNull();
  });

  it('When Enter on an SR with a backup disk, Then the backup runs on it', () => {
    const s = when(picking, press('down'), press('enter'));
    expect(s).toMatchObject({ kind: 'running', req: 2, sr: { uuid: 'c' }, progress: null });
    expect(backupWork(s)).toEqual({ kind: 'backup', req: 2, srUuid: 'c' });
  });

  it('When Enter on an SR without one, Then it says a disk will be created; Esc goes back', () => {
    const ask = when(picking, press('up'), press('enter'));
    expect(ask).toMatchObject({ kind: 'confirmCreate', sr: { uuid: 'a' } });
    expect(backupWork(ask)).toBeNull();
    expect(when(ask, press('escape'))).toMatchObject({ kind: 'pickSr', cursor: 0 });
    expect(when(ask, press('enter'))).toMatchObject({ kind: 'running', sr: { uuid: 'a' } });
  });

  it('follows progress, then shows the result and loads the ring picture', () => {
    const running = when(picking, press('enter'));
    const progress = { phase: 'Exporting VM metadata', done: 2, total: 5, bytes: 8192 };
    expect(when(running, { type: 'progress', req: 2, progress })).toMatchObject({ progress });
    const done = when(running, { type: 'backupDone', req: 2, result: RESULT });
    expect(done).toMatchObject({ kind: 'done', req: 3, result: RESULT, usage: 'loading' });
    expect(backupWork(done)).toEqual({ kind: 'usage', req: 3, srUuid: 'b' });
    const usage = { capacity: 100, used: 10, maxRecords: 25, records: [{ seq: 4, size: 10 }] };
    const pictured = when(done, { type: 'usageLoaded', req: 3, usage });
    expect(pictured).toMatchObject({ usage });
    expect(backupWork(pictured)).toBeNull();
    expect(when(done, { type: 'usageLoaded', req: 3, usage: null })).toMatchObject({
      usage: 'unavailable',
    });
    expect(when(pictured, press('enter')).kind).toBe('closed');
  });

  it('When the backup fails, Then the failure is shown, and Enter goes back to the SRs', () => {
    const failed = when(picking, press('enter'), { type: 'failed', req: 2, message: 'Disk full.' });
    expect(failed).toMatchObject({ kind: 'failed', message: 'Disk full.', cancelled: false });
    expect(when(failed, press('enter'))).toMatchObject({ kind: 'pickSr', cursor: 1 });
    expect(when(failed, press('escape')).kind).toBe('closed');
  });

  it('When Esc while running, Then it stops the work (no work asked) and reports the outcome', () => {
    const cancelling = when(picking, press('enter'), press('escape'));
    expect(cancelling.kind).toBe('cancelling');
    expect(backupWork(cancelling)).toBeNull();
    expect(
      when(cancelling, { type: 'failed', req: 2, message: 'Stopped; nothing changed.' }),
    ).toMatchObject({ kind: 'failed', cancelled: true });
    // A backup that finished before the stop took effect is still reported as done.
    expect(when(cancelling, { type: 'backupDone', req: 2, result: RESULT }).kind).toBe('done');
  });

  it('ignores stale answers and keys that mean nothing in a state', () => {
    expect(when(initialBackup, { type: 'srsLoaded', req: 5, srs: SRS })).toBe(initialBackup);
    const running = when(picking, press('enter'));
    expect(when(running, { type: 'backupDone', req: 1, result: RESULT })).toBe(running);
    expect(when(running, press('enter'), press('down'))).toBe(running);
  });

  it('When listing the SRs fails, Then Enter or Esc closes', () => {
    const failed = when(initialBackup, { type: 'failed', req: 1, message: 'No pool.' });
    expect(failed).toMatchObject({ kind: 'failed', sr: null, message: 'No pool.' });
    expect(when(failed, press('enter')).kind).toBe('closed');
  });

  it('Given no SR, Then Enter does nothing and Esc closes', () => {
    const empty = when(initialBackup, { type: 'srsLoaded', req: 1, srs: [] });
    expect(when(empty, press('enter'))).toBe(empty);
    expect(when(empty, press('escape')).kind).toBe('closed');
  });
});
