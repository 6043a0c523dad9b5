import { describe, expect, it } from 'vitest';
import {
  backupDecider,
  chooseLegacyCandidate,
  convertDecider,
  legacyAccess,
  restoreDecider,
  restoreSummaryLine,
  scheduleDecider,
} from '../src/index.js';
import { BACKUP_STARTED, backupWritten } from './backup-events.js';
import { DeciderSpecification } from './decider-spec.js';

const started = BACKUP_STARTED;
const written = backupWritten({ templateCount: 1 });

describe('backup decider', () => {
  it('starts once', () => {
    DeciderSpecification.for(backupDecider)
      .given([])
      .when({ type: 'StartBackup', data: started.data })
      .thenEvents([started]);
    DeciderSpecification.for(backupDecider)
      .given([started])
      .when({ type: 'StartBackup', data: started.data })
      .thenThrows('RUN_ALREADY_STARTED');
  });
  it('writes only while running, fails once', () => {
    DeciderSpecification.for(backupDecider)
      .given([])
      .when({ type: 'RecordWritten', data: written })
      .thenThrows('RUN_NOT_STARTED');
    DeciderSpecification.for(backupDecider)
      .given([started])
      .when({ type: 'RecordWritten', data: written })
      .thenEvents([{ type: 'BackupWritten', data: written }]);
    const failed = { runId: 'r', srUuid: 's', code: 'X', reason: 'y' };
    DeciderSpecification.for(backupDecider)
      .given([started])
      .when({ type: 'FailBackup', data: failed })
      .thenEvents([{ type: 'BackupFailed', data: failed }]);
    DeciderSpecification.for(backupDecider)
      .given([started, { type: 'BackupWritten', data: written }])
      .when({ type: 'FailBackup', data: failed })
      .thenThrows('RUN_FINISHED');
  });
});

describe('restore decider', () => {
  const req = {
    type: 'RestoreRequested' as const,
    data: {
      runId: 'r',
      poolUuid: 'p',
      srUuid: 's',
      vdiUuid: 'v',
      date: 'd',
      seq: 1,
      mode: 'all' as const,
      dryRun: true,
      force: false,
      legacy: false,
      formatVersion: 1,
    },
  };
  const ok = (u: string) => ({
    type: 'VmRestored' as const,
    data: { runId: 'r', vmUuid: u, name: u, isTemplate: false, dryRun: true },
  });
  const bad = (u: string) => ({
    type: 'VmRestoreFailed' as const,
    data: {
      runId: 'r',
      vmUuid: u,
      name: u,
      code: 'VDI_LOCATION_MISSING',
      params: [],
      message: 'm',
    },
  });
  it('decides the summary from what was restored and what failed', () => {
    DeciderSpecification.for(restoreDecider)
      .given([req, ok('a'), bad('b'), ok('c')])
      .when({ type: 'FinishRestore', data: { runId: 'r' } })
      .thenEvents([
        { type: 'RestoreFinished', data: { runId: 'r', restored: 2, errors: 1, dryRun: true } },
      ]);
  });
  it('records VMs only while running', () => {
    DeciderSpecification.for(restoreDecider)
      .given([])
      .when({ type: 'RecordVmRestored', data: ok('a').data })
      .thenThrows('RUN_NOT_STARTED');
    DeciderSpecification.for(restoreDecider)
      .given([req])
      .when({ type: 'RequestRestore', data: req.data })
      .thenThrows('RUN_ALREADY_STARTED');
  });
});

describe('schedule decider', () => {
  const changed = (from: string, to: string) =>
    ({ type: 'ScheduleChanged' as const, data: { from, to, by: 'root', at: 't' } }) as never;
  it('changes frequency, ignores a no-op, refuses junk with the valid list', () => {
    DeciderSpecification.for(scheduleDecider)
      .given([])
      .when({ type: 'SetSchedule', to: 'Daily', by: 'root', at: 't' })
      .thenEvents([changed('never', 'daily')]);
    DeciderSpecification.for(scheduleDecider)
      .given([changed('never', 'daily')])
      .when({ type: 'SetSchedule', to: 'daily', by: 'root', at: 't' })
      .thenEvents([]);
    expect(() =>
      scheduleDecider.decide(
        { type: 'SetSchedule', to: 'hourly', by: 'root', at: 't' },
        scheduleDecider.initialState(),
      ),
    ).toThrow(/daily, weekly, monthly, never/);
  });
  it('starts a slot once: overlapping triggers give one run', () => {
    const s1 = {
      type: 'ScheduledRunStarted' as const,
      data: { slot: '2026-01-02T02:00:00.000Z', runId: 'a' },
    };
    DeciderSpecification.for(scheduleDecider)
      .given([changed('never', 'daily')])
      .when({ type: 'StartScheduledRun', slot: s1.data.slot, runId: 'a' })
      .thenEvents([s1]);
    DeciderSpecification.for(scheduleDecider)
      .given([changed('never', 'daily'), s1])
      .when({ type: 'StartScheduledRun', slot: s1.data.slot, runId: 'b' })
      .thenThrows('RUN_ALREADY_STARTED');
    DeciderSpecification.for(scheduleDecider)
      .given([])
      .when({ type: 'StartScheduledRun', slot: s1.data.slot, runId: 'a' })
      .thenThrows('SCHEDULE_NEVER');
  });
});

describe('convertDecider', () => {
  const start = {
    type: 'LegacyConvertStarted' as const,
    data: {
      runId: 'c',
      srUuid: 's',
      vdiUuid: 'v',
      legacyVdiUuid: 'l',
      dates: ['2024-01-01-00-00-00', '2024-02-01-00-00-00'],
      toolVersion: '0',
      formatVersion: 2,
    },
  };
  const one = {
    runId: 'c',
    date: '2024-01-01-00-00-00',
    seq: 1,
    vmCount: 3,
    templateCount: 1,
    rawBytes: 10,
    storedBytes: 5,
    fromFormatVersion: 1,
    formatVersion: 2,
  };
  const converted = { type: 'LegacyBackupConverted' as const, data: one };

  it('converts each date once, and Finished counts what the events say', () => {
    DeciderSpecification.for(convertDecider)
      .given([start])
      .when({ type: 'RecordConverted', data: one })
      .thenEvents([converted]);
    DeciderSpecification.for(convertDecider)
      .given([start, converted])
      .when({ type: 'RecordConverted', data: one })
      .thenThrows('ALREADY_CONVERTED');
    DeciderSpecification.for(convertDecider)
      .given([start, converted])
      .when({ type: 'FinishConvert', data: { runId: 'c', skipped: [], keptCopyVdiUuid: null } })
      .thenEvents([
        {
          type: 'LegacyConvertFinished',
          data: { runId: 'c', skipped: [], keptCopyVdiUuid: null, converted: 1 },
        },
      ]);
  });

  it('records nothing before it starts or after it ends', () => {
    DeciderSpecification.for(convertDecider)
      .given([])
      .when({ type: 'RecordConverted', data: one })
      .thenThrows('RUN_NOT_STARTED');
    const failed = {
      type: 'LegacyConvertFailed' as const,
      data: { runId: 'c', code: 'X', reason: 'x' },
    };
    DeciderSpecification.for(convertDecider)
      .given([start, failed])
      .when({ type: 'FailConvert', data: failed.data })
      .thenThrows('RUN_FINISHED');
    const { dates, ...again } = start.data;
    DeciderSpecification.for(convertDecider)
      .given([start])
      .when({
        type: 'StartConvert',
        data: { ...again, candidates: dates, now: '2026-01-01T00:00:00Z', keep: 25 },
      })
      .thenThrows('RUN_ALREADY_STARTED');
  });
});

describe('legacyAccess: XenServer rule and XSA-459, as a pure decision', () => {
  const sr = 'sr-1';
  it('reads nothing without the opt-in, whatever else is true', () => {
    for (const backupVdi of [null, { uuid: 'own', holds: 'legacy' as const }])
      expect(legacyAccess({ optedIn: false, srUuid: sr, namedVdi: 'x', backupVdi })).toMatchObject({
        allowed: false,
        code: 'LEGACY_NOT_ALLOWED',
      });
  });

  it('a named VDI is read; the own VDI holding ext3 is read without a scan', () => {
    expect(
      legacyAccess({
        optedIn: true,
        srUuid: sr,
        namedVdi: 'x',
        backupVdi: { uuid: 'own', holds: 'ring' },
      }),
    ).toEqual({ allowed: true, vdiUuid: 'x', how: 'named' });
    expect(
      legacyAccess({ optedIn: true, srUuid: sr, backupVdi: { uuid: 'own', holds: 'legacy' } }),
    ).toEqual({ allowed: true, vdiUuid: 'own', how: 'backup-vdi' });
    expect(legacyAccess({ optedIn: true, srUuid: sr, backupVdi: null })).toEqual({
      allowed: true,
      vdiUuid: null,
      how: 'scan',
    });
  });

  it('an SR holding a new-format backup VDI: unavailable unless a VDI is named', () => {
    for (const holds of ['ring', 'unreadable'] as const) {
      const a = legacyAccess({ optedIn: true, srUuid: sr, backupVdi: { uuid: 'own', holds } });
      expect(a).toMatchObject({ allowed: false, code: 'LEGACY_UNAVAILABLE' });
      expect(!a.allowed && a.reason).toMatch(/-o -x VDI_UUID/);
    }
  });

  it('a blank backup VDI holds no backup: the SR is scanned', () => {
    expect(
      legacyAccess({ optedIn: true, srUuid: sr, backupVdi: { uuid: 'own', holds: 'blank' } }),
    ).toEqual({ allowed: true, vdiUuid: null, how: 'scan' });
  });

  it('a scan trusts exactly one candidate', () => {
    expect(chooseLegacyCandidate(sr, ['a'])).toEqual({ vdiUuid: 'a' });
    expect(chooseLegacyCandidate(sr, [])).toMatchObject({ code: 'LEGACY_UNAVAILABLE' });
    expect(chooseLegacyCandidate(sr, ['a', 'b'])).toMatchObject({
      code: 'LEGACY_AMBIGUOUS',
      reason: expect.stringMatching(/a, b.*-x VDI_UUID/),
    });
  });
});

it('writes the restore summary line as upstream does (the CLI and the console print it)', () => {
  expect(restoreSummaryLine(3, 1)).toBe('Restored 3 VM(s), and 1 error(s)');
});
