import { describe, expect, it } from 'vitest';
import {
  backupDecider,
  chooseLegacyCandidate,
  convertDecider,
  type Decider,
  DomainError,
  fold,
  legacyAccess,
  restoreDecider,
  restoreSummaryLine,
  scheduleDecider,
} from '../src/index.js';

/** Given events, When a command, Then events (or an error code). */
function given<C, E, S>(d: Decider<C, E, S>, events: E[]) {
  const state = fold(d, events);
  return {
    when: (cmd: C) => ({
      expectEvents: (expected: E[]) => expect(d.decide(cmd, state)).toEqual(expected),
      thenFails: (code: string) => {
        let err: unknown;
        try {
          d.decide(cmd, state);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(DomainError);
        expect((err as DomainError).code).toBe(code);
      },
    }),
  };
}

const started = {
  type: 'BackupStarted' as const,
  data: {
    runId: 'r',
    poolUuid: 'p',
    srUuid: 's',
    vdiUuid: 'v',
    keep: 25,
    trigger: 'manual' as const,
    toolVersion: '0',
    formatVersion: 1,
    createdVdi: false,
  },
};
const written = {
  runId: 'r',
  srUuid: 's',
  vdiUuid: 'v',
  seq: 1,
  date: 'd',
  vmCount: 2,
  templateCount: 1,
  rawBytes: 10,
  storedBytes: 2,
  formatVersion: 1,
  evicted: [],
};

describe('backup decider', () => {
  it('starts once', () => {
    given(backupDecider, [])
      .when({ type: 'StartBackup', data: started.data })
      .expectEvents([started]);
    given(backupDecider, [started])
      .when({ type: 'StartBackup', data: started.data })
      .thenFails('RUN_ALREADY_STARTED');
  });
  it('writes only while running, fails once', () => {
    given(backupDecider, [])
      .when({ type: 'RecordWritten', data: written })
      .thenFails('RUN_NOT_STARTED');
    given(backupDecider, [started])
      .when({ type: 'RecordWritten', data: written })
      .expectEvents([{ type: 'BackupWritten', data: written }]);
    const failed = { runId: 'r', srUuid: 's', code: 'X', reason: 'y' };
    given(backupDecider, [started])
      .when({ type: 'FailBackup', data: failed })
      .expectEvents([{ type: 'BackupFailed', data: failed }]);
    given(backupDecider, [started, { type: 'BackupWritten', data: written }])
      .when({ type: 'FailBackup', data: failed })
      .thenFails('RUN_FINISHED');
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
    given(restoreDecider, [req, ok('a'), bad('b'), ok('c')])
      .when({ type: 'FinishRestore', data: { runId: 'r' } })
      .expectEvents([
        { type: 'RestoreFinished', data: { runId: 'r', restored: 2, errors: 1, dryRun: true } },
      ]);
  });
  it('records VMs only while running', () => {
    given(restoreDecider, [])
      .when({ type: 'RecordVmRestored', data: ok('a').data })
      .thenFails('RUN_NOT_STARTED');
    given(restoreDecider, [req])
      .when({ type: 'RequestRestore', data: req.data })
      .thenFails('RUN_ALREADY_STARTED');
  });
});

describe('schedule decider', () => {
  const changed = (from: string, to: string) =>
    ({ type: 'ScheduleChanged' as const, data: { from, to, by: 'root', at: 't' } }) as never;
  it('changes frequency, ignores a no-op, refuses junk with the valid list', () => {
    given(scheduleDecider, [])
      .when({ type: 'SetSchedule', to: 'Daily', by: 'root', at: 't' })
      .expectEvents([changed('never', 'daily')]);
    given(scheduleDecider, [changed('never', 'daily')])
      .when({ type: 'SetSchedule', to: 'daily', by: 'root', at: 't' })
      .expectEvents([]);
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
    given(scheduleDecider, [changed('never', 'daily')])
      .when({ type: 'StartScheduledRun', slot: s1.data.slot, runId: 'a' })
      .expectEvents([s1]);
    given(scheduleDecider, [changed('never', 'daily'), s1])
      .when({ type: 'StartScheduledRun', slot: s1.data.slot, runId: 'b' })
      .thenFails('RUN_ALREADY_STARTED');
    given(scheduleDecider, [])
      .when({ type: 'StartScheduledRun', slot: s1.data.slot, runId: 'a' })
      .thenFails('SCHEDULE_NEVER');
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
    given(convertDecider, [start])
      .when({ type: 'RecordConverted', data: one })
      .expectEvents([converted]);
    given(convertDecider, [start, converted])
      .when({ type: 'RecordConverted', data: one })
      .thenFails('ALREADY_CONVERTED');
    given(convertDecider, [start, converted])
      .when({ type: 'FinishConvert', data: { runId: 'c', skipped: [], keptCopyVdiUuid: null } })
      .expectEvents([
        {
          type: 'LegacyConvertFinished',
          data: { runId: 'c', skipped: [], keptCopyVdiUuid: null, converted: 1 },
        },
      ]);
  });

  it('records nothing before it starts or after it ends', () => {
    given(convertDecider, [])
      .when({ type: 'RecordConverted', data: one })
      .thenFails('RUN_NOT_STARTED');
    const failed = {
      type: 'LegacyConvertFailed' as const,
      data: { runId: 'c', code: 'X', reason: 'x' },
    };
    given(convertDecider, [start, failed])
      .when({ type: 'FailConvert', data: failed.data })
      .thenFails('RUN_FINISHED');
    const { dates, ...again } = start.data;
    given(convertDecider, [start])
      .when({
        type: 'StartConvert',
        data: { ...again, candidates: dates, now: '2026-01-01T00:00:00Z', keep: 25 },
      })
      .thenFails('RUN_ALREADY_STARTED');
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
