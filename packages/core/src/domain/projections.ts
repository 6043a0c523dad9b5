import type { BackupEvent, Frequency } from '../events/index.js';
import type { EventStore, RecordedEvent } from '../store/types.js';
import { nextSlot, type ScheduleState, scheduleDecider, type UtcOffset } from './schedule.js';

/** A projection: a pure fold over recorded events, rebuildable from the log at any time. */
export interface Projection<S> {
  readonly initial: S;
  apply(state: S, e: RecordedEvent): S;
}

/** Rebuilds a projection by reading the whole log in global order. */
export async function rebuild<S>(
  store: EventStore,
  p: Projection<S>,
  fromPosition = 1,
): Promise<S> {
  // A copy: projections fold into their state, and `initial` is shared by every rebuild.
  let s = structuredClone(p.initial);
  for await (const e of store.readAll({ fromPosition })) s = p.apply(s, e);
  return s;
}

export interface HistoryEntry {
  position: number;
  stream: string;
  type: string;
  at: string;
  data: unknown;
}

/** What `xsmeta history` prints: every event, oldest first. */
export const historyProjection: Projection<HistoryEntry[]> = {
  initial: [],
  apply: (s, e) => {
    s.push({ position: e.position, stream: e.stream, type: e.type, at: e.at, data: e.data });
    return s;
  },
};

type Written = Extract<BackupEvent, { type: 'BackupWritten' }>['data'];

export interface CatalogueEntry extends Written {
  at: string;
}

/** Per SR: the backups written by this machine (the disk itself is the authority). */
export const catalogueProjection: Projection<Map<string, CatalogueEntry[]>> = {
  initial: new Map(),
  apply: (s, e) => {
    if (e.type === 'BackupWritten') {
      const d = e.data as Written;
      const list = (s.get(d.srUuid) ?? []).filter(
        (x) => !d.evicted.includes(x.seq) && x.seq !== d.seq,
      );
      list.push({ ...d, at: e.at });
      s.set(d.srUuid, list);
    }
    return s;
  },
};

export interface LastResult {
  at: string;
  runId: string;
  outcome: 'success' | 'failure';
  detail: string;
}

/** The last backup result per SR (`null` key: failures before an SR was chosen). */
export const lastResultProjection: Projection<Map<string | null, LastResult>> = {
  initial: new Map(),
  apply: (s, e) => {
    if (e.type === 'BackupWritten') {
      const d = e.data as Written;
      s.set(d.srUuid, {
        at: e.at,
        runId: d.runId,
        outcome: 'success',
        detail: `backup ${d.date} (seq ${d.seq})`,
      });
    } else if (e.type === 'BackupFailed') {
      const d = e.data as { runId: string; srUuid: string | null; code: string; reason: string };
      s.set(d.srUuid, {
        at: e.at,
        runId: d.runId,
        outcome: 'failure',
        detail: `${d.code}: ${d.reason}`,
      });
    }
    return s;
  },
};

export interface ScheduleView extends ScheduleState {
  lastRunAt: string | null;
}

/** The schedule's state from the `schedule` stream's events. */
export const scheduleProjection: Projection<ScheduleView> = {
  initial: { ...scheduleDecider.initialState(), lastRunAt: null },
  apply: (s, e) => {
    if (e.stream !== 'schedule') return s;
    const next = scheduleDecider.evolve(
      s,
      e as unknown as Parameters<typeof scheduleDecider.evolve>[1],
    );
    const lastRunAt = e.type === 'ScheduledRunFinished' ? e.at : s.lastRunAt;
    return {
      ...next,
      lastRunAt,
      lastRun: next.lastRun && lastRunAt ? { ...next.lastRun, at: lastRunAt } : next.lastRun,
    };
  },
};

/** `xsmeta schedule --json`: `{frequency, srUuid, nextRunAt, lastRun}`. */
export function scheduleSummary(
  view: ScheduleView,
  now: Date,
  defaultSrUuid: string | null,
  offset?: UtcOffset,
) {
  const next = nextSlot(view.frequency as Frequency, now, offset);
  return {
    frequency: view.frequency,
    srUuid: view.frequency === 'never' ? null : defaultSrUuid,
    nextRunAt: next ? next.toISOString() : null,
    lastRun: view.lastRun,
  };
}
