import { describe, expect, it } from 'vitest';
import { chooseSr, convertDecider, ringAction, scheduleDecider } from '../src/index.js';
import { DeciderSpecification } from './decider-spec.js';

const start = {
  runId: 'c',
  srUuid: 'sr',
  vdiUuid: 'v',
  legacyVdiUuid: 'l',
  toolVersion: 't',
  formatVersion: 2,
};

describe('conversion: which legacy dates are taken, which left and why', () => {
  const convert = DeciderSpecification.for(convertDecider);
  const now = '2026-06-01T12:00:00.000Z';

  it('takes every date in the past, newest first, and records the choice', () => {
    convert
      .given([])
      .when({
        type: 'StartConvert',
        data: {
          ...start,
          candidates: ['2026-01-02-03-04-05', '2026-05-01-00-00-00', '2026-01-02-03-04-05'],
          now,
          keep: 25,
        },
      })
      .thenEvents([
        {
          type: 'LegacyConvertStarted',
          data: { ...start, dates: ['2026-05-01-00-00-00', '2026-01-02-03-04-05'], skipped: [] },
        },
      ]);
  });

  it('leaves a date in the future, an unreadable one, and those beyond the ring’s keep', () => {
    convert
      .given([])
      .when({
        type: 'StartConvert',
        data: {
          ...start,
          candidates: [
            '2026-05-03-00-00-00',
            '2026-05-02-00-00-00',
            '2026-05-01-00-00-00',
            '2031-01-01-00-00-00',
            'not-a-date',
          ],
          now,
          keep: 2,
        },
      })
      .thenEvents([
        {
          type: 'LegacyConvertStarted',
          data: {
            ...start,
            dates: ['2026-05-03-00-00-00', '2026-05-02-00-00-00'],
            skipped: [
              { date: 'not-a-date', reason: 'dated in the future' },
              { date: '2031-01-01-00-00-00', reason: 'dated in the future' },
              {
                date: '2026-05-01-00-00-00',
                reason: 'older than the 2 newest, which the ring keeps',
              },
            ],
          },
        },
      ]);
  });

  it('a conversion starts once', () => {
    const started = {
      type: 'LegacyConvertStarted' as const,
      data: { ...start, dates: [], skipped: [] },
    };
    convert
      .given([started])
      .when({ type: 'StartConvert', data: { ...start, candidates: [], now, keep: 25 } })
      .thenThrows('RUN_ALREADY_STARTED');
  });
});

describe('schedule, as Given/When/Then', () => {
  const schedule = DeciderSpecification.for(scheduleDecider);
  it('a frequency set again decides nothing; a junk one is refused', () => {
    const changed = {
      type: 'ScheduleChanged' as const,
      data: { from: 'never' as const, to: 'daily' as const, by: 'root', at: 't' },
    };
    schedule
      .given([changed])
      .when({ type: 'SetSchedule', to: 'daily', by: 'root', at: 't' })
      .thenNothing();
    schedule
      .given([])
      .when({ type: 'SetSchedule', to: 'hourly', by: 'root', at: 't' })
      .thenThrows('INVALID_FREQUENCY');
  });
});

describe('the SR a backup goes to', () => {
  it('the one named, else the pool default, else refused with what to do', () => {
    expect(chooseSr('named', 'default')).toEqual({ srUuid: 'named', how: 'named' });
    expect(chooseSr(undefined, 'default')).toEqual({ srUuid: 'default', how: 'pool-default' });
    expect(chooseSr(null, null)).toMatchObject({
      code: 'NO_DEFAULT_SR',
      reason: expect.stringMatching(/-u SR_UUID/),
    });
  });
});

describe('whether the backup disk gets formatted', () => {
  it('re-initialised or just created: formatted without looking', () => {
    for (const found of [null, 'ring', 'foreign'] as const) {
      expect(ringAction({ reinit: true, justCreated: false, found })).toBe('format');
      expect(ringAction({ reinit: false, justCreated: true, found })).toBe('format');
    }
  });
  it('otherwise looked at: a ring is used, a blank disk formatted, ext3 refused', () => {
    const rule = { reinit: false, justCreated: false };
    expect(ringAction({ ...rule, found: null })).toBe('look');
    expect(ringAction({ ...rule, found: 'ring' })).toBe('use');
    expect(ringAction({ ...rule, found: 'not-formatted' })).toBe('format');
    expect(ringAction({ ...rule, found: 'foreign' })).toBe('refuse');
  });
});
