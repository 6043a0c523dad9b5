import type { Frequency, ScheduleEvent } from '../events/index.js';
import { type Decider, DomainError } from './decider.js';

export const FREQUENCIES: readonly Frequency[] = ['daily', 'weekly', 'monthly', 'never'];

/** Parses a frequency; anything else is refused with the list of valid ones. */
export function parseFrequency(input: string): Frequency {
  const f = input.trim().toLowerCase();
  if ((FREQUENCIES as readonly string[]).includes(f)) return f as Frequency;
  throw new DomainError(
    'INVALID_FREQUENCY',
    `unknown frequency "${input}": use one of ${FREQUENCIES.join(', ')}`,
  );
}

/**
 * The local time zone, as the minutes to add to UTC to get local wall-clock time at an instant
 * (e.g. +60 for CET). The CLI passes one built on Intl; tests pass fixed rules.
 */
export type UtcOffset = (at: Date) => number;
export const UTC: UtcOffset = () => 0;

/** Slots fall at this local hour: daily every day, weekly on Sundays, monthly on the 1st. */
export const SLOT_HOUR = 2;

interface Wall {
  y: number;
  m: number;
  d: number;
}

/** The UTC instant of local wall time y-m-d SLOT_HOUR:00 (a skipped hour resolves forward). */
function instantOf(w: Wall, offset: UtcOffset): Date {
  const wall = Date.UTC(w.y, w.m, w.d, SLOT_HOUR);
  let t = wall - offset(new Date(wall)) * 60_000;
  t = wall - offset(new Date(t)) * 60_000;
  return new Date(t);
}

function wallDate(at: Date, offset: UtcOffset): Wall {
  const local = new Date(at.getTime() + offset(at) * 60_000);
  return { y: local.getUTCFullYear(), m: local.getUTCMonth(), d: local.getUTCDate() };
}

function shift(w: Wall, days: number): Wall {
  const t = new Date(Date.UTC(w.y, w.m, w.d + days));
  return { y: t.getUTCFullYear(), m: t.getUTCMonth(), d: t.getUTCDate() };
}

/** The newest slot at or before `now`, or null for 'never'. */
export function latestSlot(freq: Frequency, now: Date, offset: UtcOffset = UTC): Date | null {
  if (freq === 'never') return null;
  let w = wallDate(now, offset);
  if (freq === 'weekly') w = shift(w, -new Date(Date.UTC(w.y, w.m, w.d)).getUTCDay());
  if (freq === 'monthly') w = { ...w, d: 1 };
  let slot = instantOf(w, offset);
  while (slot.getTime() > now.getTime()) {
    w =
      freq === 'daily'
        ? shift(w, -1)
        : freq === 'weekly'
          ? shift(w, -7)
          : { y: w.m === 0 ? w.y - 1 : w.y, m: (w.m + 11) % 12, d: 1 };
    slot = instantOf(w, offset);
  }
  return slot;
}

/** The first slot strictly after `now`, or null for 'never'. */
export function nextSlot(freq: Frequency, now: Date, offset: UtcOffset = UTC): Date | null {
  const last = latestSlot(freq, now, offset);
  if (!last) return null;
  let w = wallDate(last, offset);
  for (let i = 0; i < 3; i++) {
    w =
      freq === 'daily'
        ? shift(w, 1)
        : freq === 'weekly'
          ? shift(w, 7)
          : { y: w.m === 11 ? w.y + 1 : w.y, m: (w.m + 1) % 12, d: 1 };
    const next = instantOf(w, offset);
    if (next.getTime() > now.getTime()) return next;
  }
  return null;
}

/**
 * The slot to run now, if any: the newest slot not yet run. Slots missed while the machine was
 * off collapse into this one catch-up run; a slot already started is never run again.
 */
export function dueSlot(
  freq: Frequency,
  lastSlotRun: string | null,
  now: Date,
  offset: UtcOffset = UTC,
  since: string | null = null,
): string | null {
  const slot = latestSlot(freq, now, offset);
  if (!slot) return null;
  const iso = slot.toISOString();
  // A slot that passed before the schedule was set is not owed.
  if (since !== null && iso < since) return null;
  return lastSlotRun !== null && lastSlotRun >= iso ? null : iso;
}

export interface ScheduleState {
  frequency: Frequency;
  /** When the current frequency was set (ISO): earlier slots are not owed. */
  since: string | null;
  /** The newest slot a scheduled run was started for. */
  lastSlot: string | null;
  running: string | null;
  lastRun: {
    at: string;
    slot: string;
    outcome: 'success' | 'failure';
    srUuid: string | null;
    error?: string;
  } | null;
}

export type ScheduleCommand =
  | { type: 'SetSchedule'; to: string; by: string; at: string }
  | { type: 'StartScheduledRun'; slot: string; runId: string }
  | {
      type: 'FinishScheduledRun';
      slot: string;
      runId: string;
      outcome: 'success' | 'failure';
      srUuid: string | null;
      error?: string;
    };

export const scheduleDecider: Decider<ScheduleCommand, ScheduleEvent, ScheduleState> = {
  initialState: () => ({
    frequency: 'never',
    since: null,
    lastSlot: null,
    running: null,
    lastRun: null,
  }),
  decide(cmd, s) {
    switch (cmd.type) {
      case 'SetSchedule': {
        const to = parseFrequency(cmd.to);
        return to === s.frequency
          ? []
          : [{ type: 'ScheduleChanged', data: { from: s.frequency, to, by: cmd.by, at: cmd.at } }];
      }
      case 'StartScheduledRun':
        if (s.frequency === 'never')
          throw new DomainError('SCHEDULE_NEVER', 'no backup is scheduled');
        if (s.lastSlot !== null && s.lastSlot >= cmd.slot) {
          throw new DomainError(
            'RUN_ALREADY_STARTED',
            `the run for slot ${cmd.slot} has already started`,
          );
        }
        return [{ type: 'ScheduledRunStarted', data: { slot: cmd.slot, runId: cmd.runId } }];
      case 'FinishScheduledRun':
        if (s.running !== cmd.slot)
          throw new DomainError('RUN_NOT_STARTED', `no run is in progress for slot ${cmd.slot}`);
        return [
          {
            type: 'ScheduledRunFinished',
            data: {
              slot: cmd.slot,
              runId: cmd.runId,
              outcome: cmd.outcome,
              srUuid: cmd.srUuid,
              ...(cmd.error ? { error: cmd.error } : {}),
            },
          },
        ];
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'ScheduleChanged':
        return { ...s, frequency: e.data.to, since: e.data.at };
      case 'ScheduledRunStarted':
        return { ...s, lastSlot: e.data.slot, running: e.data.slot };
      case 'ScheduledRunFinished':
        return {
          ...s,
          // A failed slot is owed again: the next trigger (cron runs hourly) retries it.
          lastSlot: e.data.outcome === 'failure' && s.lastSlot === e.data.slot ? null : s.lastSlot,
          running: s.running === e.data.slot ? null : s.running,
          lastRun: {
            at: e.data.slot,
            slot: e.data.slot,
            outcome: e.data.outcome,
            srUuid: e.data.srUuid,
            ...(e.data.error ? { error: e.data.error } : {}),
          },
        };
    }
  },
};
