import { describe, expect, it } from 'vitest';
import type { ScheduleStatus } from '../services.js';
import { folder, press } from '../test-support/machines.js';
import {
  initialSchedule,
  type ScheduleAction,
  type ScheduleState,
  scheduleReducer,
  scheduleWork,
} from './schedule.js';

const when = folder<ScheduleState, ScheduleAction>(scheduleReducer);
const WEEKLY: ScheduleStatus = {
  frequency: 'weekly',
  srUuid: 'sr-1',
  nextRunAt: '2025-03-08T10:00:00.000Z',
  lastRun: null,
};

describe('schedule machine', () => {
  const pick = when(initialSchedule, { type: 'loaded', req: 1, schedule: WEEKLY });

  it('Given it opens, Then it reads the schedule and puts the cursor on the current setting', () => {
    expect(scheduleWork(initialSchedule)).toEqual({ kind: 'get', req: 1 });
    expect(pick).toMatchObject({ kind: 'pick', cursor: 1, current: WEEKLY });
  });

  it('When Down and Enter, Then it saves monthly, then shows what was saved', () => {
    const saving = when(pick, press('down'), press('enter'));
    expect(saving).toMatchObject({ kind: 'saving', choice: 'monthly', req: 2 });
    expect(scheduleWork(saving)).toEqual({ kind: 'set', req: 2, frequency: 'monthly' });
    const monthly = { ...WEEKLY, frequency: 'monthly' as const };
    const saved = when(saving, { type: 'saved', req: 2, schedule: monthly });
    expect(saved).toEqual({ kind: 'saved', req: 2, schedule: monthly });
    expect(scheduleWork(saved)).toBeNull();
    expect(when(saved, press('enter')).kind).toBe('closed');
  });

  it('When saving fails, Then Enter goes back to the choices and Esc closes', () => {
    const failed = when(pick, press('end'), press('enter'), {
      type: 'failed',
      req: 2,
      message: 'No.',
    });
    expect(failed).toMatchObject({ kind: 'failed', message: 'No.' });
    expect(when(failed, press('enter'))).toMatchObject({ kind: 'pick', cursor: 3 });
    expect(when(failed, press('escape')).kind).toBe('closed');
  });

  it('Esc cancels without saving; keys are ignored while saving', () => {
    expect(when(pick, press('escape')).kind).toBe('closed');
    const saving = when(pick, press('enter'));
    expect(when(saving, press('escape'), press('down'))).toBe(saving);
  });
});
