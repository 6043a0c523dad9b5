import type { Frequency, ScheduleStatus } from '../services.js';
import { isBack, type Keypress, moveCursor } from './keys.js';

/** The choices, in xsconsole's order. */
export const FREQUENCIES: readonly { readonly label: string; readonly frequency: Frequency }[] = [
  { label: 'Daily', frequency: 'daily' },
  { label: 'Weekly', frequency: 'weekly' },
  { label: 'Monthly', frequency: 'monthly' },
  { label: 'Never', frequency: 'never' },
];

export type ScheduleState =
  | { readonly kind: 'loading'; readonly req: number }
  | {
      readonly kind: 'pick';
      readonly req: number;
      readonly current: ScheduleStatus;
      readonly cursor: number;
    }
  | {
      readonly kind: 'saving';
      readonly req: number;
      readonly current: ScheduleStatus;
      readonly cursor: number;
      readonly choice: Frequency;
    }
  | { readonly kind: 'saved'; readonly req: number; readonly schedule: ScheduleStatus }
  | {
      readonly kind: 'failed';
      readonly req: number;
      readonly message: string;
      /** Where Enter goes (Esc closes): back to the choices, when they were loaded. */
      readonly back: ScheduleState | null;
    }
  | { readonly kind: 'closed'; readonly req: number };

export type ScheduleAction =
  | { readonly type: 'key'; readonly key: Keypress }
  | { readonly type: 'loaded'; readonly req: number; readonly schedule: ScheduleStatus }
  | { readonly type: 'saved'; readonly req: number; readonly schedule: ScheduleStatus }
  | { readonly type: 'failed'; readonly req: number; readonly message: string };

export type ScheduleWork =
  | { readonly kind: 'get'; readonly req: number }
  | { readonly kind: 'set'; readonly req: number; readonly frequency: Frequency };

export const initialSchedule: ScheduleState = { kind: 'loading', req: 1 };

function onKey(s: ScheduleState, k: Keypress): ScheduleState {
  switch (s.kind) {
    case 'loading':
      return isBack(k) ? { kind: 'closed', req: s.req } : s;
    case 'pick': {
      const moved = moveCursor(s.cursor, FREQUENCIES.length, k);
      if (moved !== null) return { ...s, cursor: moved };
      if (isBack(k)) return { kind: 'closed', req: s.req };
      const choice = FREQUENCIES[s.cursor];
      if (!choice || k.name !== 'enter') return s;
      return { ...s, kind: 'saving', req: s.req + 1, choice: choice.frequency };
    }
    case 'saving':
    case 'closed':
      return s;
    case 'saved':
      return k.name === 'enter' || k.name === 'escape' ? { kind: 'closed', req: s.req } : s;
    case 'failed':
      if (k.name === 'enter' && s.back) return s.back;
      return k.name === 'enter' || k.name === 'escape' ? { kind: 'closed', req: s.req } : s;
  }
}

export function scheduleReducer(s: ScheduleState, a: ScheduleAction): ScheduleState {
  if (a.type === 'key') return onKey(s, a.key);
  if (a.req !== s.req) return s;
  switch (a.type) {
    case 'loaded': {
      if (s.kind !== 'loading') return s;
      const cursor = FREQUENCIES.findIndex((f) => f.frequency === a.schedule.frequency);
      return { kind: 'pick', req: s.req, current: a.schedule, cursor: Math.max(0, cursor) };
    }
    case 'saved':
      return s.kind === 'saving' ? { kind: 'saved', req: s.req, schedule: a.schedule } : s;
    case 'failed':
      if (s.kind === 'loading')
        return { kind: 'failed', req: s.req, message: a.message, back: null };
      if (s.kind === 'saving') {
        const back: ScheduleState = {
          kind: 'pick',
          req: s.req,
          current: s.current,
          cursor: s.cursor,
        };
        return { kind: 'failed', req: s.req, message: a.message, back };
      }
      return s;
  }
}

export function scheduleWork(s: ScheduleState): ScheduleWork | null {
  if (s.kind === 'loading') return { kind: 'get', req: s.req };
  if (s.kind === 'saving') return { kind: 'set', req: s.req, frequency: s.choice };
  return null;
}
