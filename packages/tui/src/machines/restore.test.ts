import { describe, expect, it } from 'vitest';
import type { SrChoice } from '../services.js';
import { folder, press, srChoice } from '../test-support/machines.js';
import {
  initialRestore,
  RECENT_VMS,
  type RestoreAction,
  type RestoreState,
  restoreReducer,
  restoreWork,
} from './restore.js';
import { pointFromLegacy, RESTORE_CHOICES, type RestorePoint } from './restore-choices.js';

const when = folder<RestoreState, RestoreAction>(restoreReducer);
const sr = (uuid: string, hasBackupDisk: boolean, hasLegacyDisk = false): SrChoice =>
  srChoice(uuid, { hasBackupDisk, hasLegacyDisk });
const SRS = [sr('plain', false), sr('ring', true), sr('old', false, true)];
const point = (seq: number, damaged: string | null = null): RestorePoint => ({
  date: `2025-02-2${seq}-02-00-00`,
  vmCount: 4,
  seq,
  templateCount: 1,
  storedBytes: 9000,
  verified: !damaged,
  damaged,
});
const POINTS = [point(3), point(2), point(1, 'checksum mismatch')];
const USAGE = { capacity: 1000, used: 30, maxRecords: 25, records: [] };

const ringPick = when(initialRestore('ring'), { type: 'srsLoaded', req: 1, srs: SRS });
const ringPoints = when(ringPick, press('enter'), {
  type: 'pointsLoaded',
  req: 2,
  points: POINTS,
  usage: USAGE,
});

describe('restore machine (ring)', () => {
  it('Given it opens, Then it lists the SRs and starts on the first holding a backup disk', () => {
    expect(restoreWork(initialRestore('ring'))).toEqual({ kind: 'listSrs', req: 1 });
    expect(ringPick).toMatchObject({ kind: 'pickSr', srCursor: 1 });
  });

  it('When Enter on an SR, Then it reads its backups, newest first as given', () => {
    const loading = when(ringPick, press('enter'));
    expect(restoreWork(loading)).toEqual({
      kind: 'listPoints',
      req: 2,
      variant: 'ring',
      srUuid: 'ring',
    });
    expect(ringPoints).toMatchObject({
      kind: 'pickPoint',
      points: POINTS,
      usage: USAGE,
      pointCursor: 0,
    });
  });

  it('When Enter on an SR without a backup disk, Then it explains and points to the legacy entry', () => {
    const s = when(ringPick, press('up'), press('enter'));
    expect(s.kind).toBe('pickSr');
    expect(s.kind === 'pickSr' && s.notice).toMatch(/no Pool Metadata Backup disk.*Legacy Backup/);
    expect(restoreWork(s)).toBeNull();
  });

  it('When Enter on a damaged backup, Then it says why and stays', () => {
    const s = when(ringPoints, press('end'), press('enter'));
    expect(s).toMatchObject({ kind: 'pickPoint', pointCursor: 2 });
    expect(s.kind === 'pickPoint' && s.notice).toContain('damaged: checksum mismatch');
  });

  it('walks backup -> choice -> confirm -> run, and each Esc goes back one step', () => {
    const mode = when(ringPoints, press('enter'));
    expect(mode).toMatchObject({ kind: 'pickMode', point: { seq: 3 }, modeCursor: 0 });
    const confirm = when(mode, press('down'), press('down'), press('enter'));
    expect(confirm).toMatchObject({ kind: 'confirm', mode: 'sr', dryRun: true });
    expect(restoreWork(confirm)).toBeNull();
    expect(when(confirm, press('escape'))).toMatchObject({ kind: 'pickMode', modeCursor: 2 });
    expect(when(mode, press('escape'))).toMatchObject({ kind: 'pickPoint', pointCursor: 0 });
    expect(when(ringPoints, press('escape'))).toMatchObject({ kind: 'pickSr', srCursor: 1 });
    expect(when(ringPick, press('escape')).kind).toBe('closed');
    const running = when(confirm, press('enter'));
    expect(restoreWork(running)).toEqual({
      kind: 'restore',
      req: 3,
      variant: 'ring',
      srUuid: 'ring',
      point: POINTS[0],
      mode: 'sr',
      dryRun: true,
      force: false,
    });
  });

  it("offers to replace existing VMs (force) after xsconsole's four choices, and passes it on", () => {
    const last = when(ringPoints, press('enter'), press('end'));
    expect(last).toMatchObject({ kind: 'pickMode', modeCursor: RESTORE_CHOICES.length - 1 });
    expect(RESTORE_CHOICES.slice(0, 4).every((c) => !c.force)).toBe(true);
    const confirm = when(last, press('enter'));
    expect(confirm).toMatchObject({ kind: 'confirm', mode: 'all', dryRun: false, force: true });
    expect(restoreWork(when(confirm, press('enter')))).toMatchObject({
      kind: 'restore',
      mode: 'all',
      dryRun: false,
      force: true,
    });
  });

  it('counts VMs as they finish, keeps the last few, and ends on the summary', () => {
    let s = when(ringPoints, press('enter'), press('down'), press('enter'), press('enter'));
    for (let i = 1; i <= 7; i++) {
      s = when(s, {
        type: 'vm',
        req: 3,
        outcome: { vmUuid: `vm${i}`, name: `vm${i}`, ok: i !== 6, done: i, total: 7 },
      });
    }
    expect(s).toMatchObject({ kind: 'running', done: 7, total: 7 });
    expect(s.kind === 'running' && s.recent.map((v) => v.vmUuid)).toEqual(
      ['vm3', 'vm4', 'vm5', 'vm6', 'vm7'].slice(-RECENT_VMS),
    );
    const errors = [{ vmUuid: 'vm6', name: 'vm6', message: 'network missing' }];
    const summary = when(s, { type: 'restoreDone', req: 3, summary: { restored: 6, errors } });
    expect(summary).toMatchObject({
      kind: 'summary',
      restored: 6,
      errors,
      dryRun: false,
      cancelled: false,
    });
    expect(when(summary, press('enter')).kind).toBe('closed');
  });

  it('Given a dry run summary, When Enter, Then it is back to the choices to run it for real', () => {
    const s = when(
      ringPoints,
      press('enter'),
      press('down'),
      press('down'),
      press('down'),
      press('enter'),
      press('enter'),
      {
        type: 'restoreDone',
        req: 3,
        summary: { restored: 5, errors: [] },
      },
    );
    expect(s).toMatchObject({ kind: 'summary', dryRun: true, mode: 'all' });
    expect(when(s, press('enter'))).toMatchObject({ kind: 'pickMode', modeCursor: 3 });
    expect(when(s, press('escape')).kind).toBe('closed');
  });

  it('When Esc while running, Then the work is dropped (aborted) and the outcome still reported', () => {
    const running = when(ringPoints, press('enter'), press('enter'), press('enter'));
    const stopping = when(running, press('escape'));
    expect(stopping.kind).toBe('cancelling');
    expect(restoreWork(stopping)).toBeNull();
    expect(
      when(stopping, { type: 'restoreDone', req: 3, summary: { restored: 1, errors: [] } }),
    ).toMatchObject({ kind: 'summary', cancelled: true });
    const failed = when(stopping, { type: 'failed', req: 3, message: 'Aborted.' });
    expect(failed).toMatchObject({ kind: 'failed' });
    expect(failed.kind === 'failed' && failed.message).toContain('stopped');
    expect(when(failed, press('enter'))).toMatchObject({ kind: 'pickMode' });
  });

  it('drops the answer of a step left with Esc', () => {
    const loading = when(ringPick, press('enter'));
    const back = when(loading, press('escape'));
    expect(back.kind).toBe('pickSr');
    expect(when(back, { type: 'pointsLoaded', req: 2, points: POINTS, usage: USAGE })).toBe(back);
  });

  it('When reading the backups fails, Then the reason shows and Enter goes back to the SRs', () => {
    const failed = when(ringPick, press('enter'), {
      type: 'failed',
      req: 2,
      message: 'VBD plug failed.',
    });
    expect(failed).toMatchObject({ kind: 'failed', message: 'VBD plug failed.' });
    expect(when(failed, press('enter'))).toMatchObject({ kind: 'pickSr', srCursor: 1 });
  });

  it('moves through the failures of the summary', () => {
    const errors = Array.from({ length: 4 }, (_, i) => ({
      vmUuid: `v${i}`,
      name: `v${i}`,
      message: 'x',
    }));
    const s = when(ringPoints, press('enter'), press('enter'), press('enter'), {
      type: 'restoreDone',
      req: 3,
      summary: { restored: 0, errors },
    });
    expect(when(s, press('down'), press('down'))).toMatchObject({ errorCursor: 2 });
  });
});

describe('restore machine (legacy)', () => {
  const pick = when(initialRestore('legacy'), { type: 'srsLoaded', req: 1, srs: SRS });

  it('starts on the SR holding a legacy disk, and checks legacyStatus first', () => {
    expect(pick).toMatchObject({ kind: 'pickSr', srCursor: 2 });
    const checking = when(pick, press('enter'));
    expect(restoreWork(checking)).toEqual({ kind: 'legacyStatus', req: 2, srUuid: 'old' });
  });

  it('When unavailable, Then the reason shows, and Enter goes back', () => {
    const s = when(pick, press('up'), press('enter'), {
      type: 'legacyChecked',
      req: 2,
      available: false,
      reason: 'This SR holds a new-format backup disk.',
    });
    expect(s).toMatchObject({
      kind: 'legacyUnavailable',
      reason: 'This SR holds a new-format backup disk.',
    });
    expect(restoreWork(s)).toBeNull();
    expect(when(s, press('enter'))).toMatchObject({ kind: 'pickSr', srCursor: 1 });
  });

  it('When available, Then it warns that such disks are untrusted before reading them', () => {
    const warn = when(pick, press('enter'), { type: 'legacyChecked', req: 2, available: true });
    expect(warn.kind).toBe('trustWarning');
    expect(restoreWork(warn)).toBeNull();
    expect(when(warn, press('escape')).kind).toBe('pickSr');
    const loading = when(warn, press('enter'));
    expect(restoreWork(loading)).toEqual({
      kind: 'listPoints',
      req: 3,
      variant: 'legacy',
      srUuid: 'old',
    });
  });

  it('When a legacy backup cannot be read, Then it is listed as damaged and Enter says why', () => {
    const loading = when(pick, press('enter'), { type: 'legacyChecked', req: 2, available: true });
    const points = [
      pointFromLegacy({ date: '2019-06-02-03-00-00', vmCount: 0, damaged: 'LEGACY_CORRUPT: bad' }),
      pointFromLegacy({ date: '2019-06-01-03-00-00', vmCount: 2 }),
    ];
    const list = when(loading, press('enter'), {
      type: 'pointsLoaded',
      req: 3,
      points,
      usage: null,
    });
    const s = when(list, press('enter'));
    expect(s.kind === 'pickPoint' && s.notice).toContain('damaged: LEGACY_CORRUPT: bad');
    expect(when(list, press('down'), press('enter')).kind).toBe('pickMode');
  });
});
