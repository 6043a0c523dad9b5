import type { EventMetadata, RecordedEvent } from '../store/types.js';
import type { Projection } from './projections.js';

export type RunKind = 'backup' | 'restore' | 'convert' | 'schedule';

/**
 * How a run ended. RUNNING: started, not ended, its process still alive (or on another host);
 * ABANDONED: started, not ended, its process gone (killed, or the host went down).
 */
export type RunOutcome = 'SUCCESS' | 'FAILED' | 'INTERRUPTED' | 'REFUSED' | 'RUNNING' | 'ABANDONED';

/** The process that ran a run, as its events record it. */
export interface RunOwner {
  host: string;
  pid: number;
  processStart: string | null;
  boot: string | null;
}

/** One run as `xsmeta history` shows it. */
export interface RunSummary {
  runId: string;
  kind: RunKind;
  stream: string;
  /** The log position of the run's first event (orders runs started in the same millisecond). */
  position: number;
  startedAt: string;
  endedAt: string | null;
  outcome: RunOutcome;
  srUuid: string | null;
  /** Backup: VMs and templates captured; restore: VMs restored and failed; convert: dates. */
  vmCount: number | null;
  templateCount: number | null;
  restored: number | null;
  errors: number | null;
  converted: number | null;
  seq: number | null;
  dryRun: boolean | null;
  /** The error of a failed, refused or interrupted run. */
  code: string | null;
  reason: string | null;
  owner: RunOwner | null;
  /** The last event recorded: what the run had done when it ended or died. */
  lastEvent: string;
  events: number;
}

export interface RunHistoryState {
  runs: Record<string, RunSummary>;
}

function ownerOf(m: EventMetadata): RunOwner | null {
  return typeof m.host === 'string' && typeof m.pid === 'number'
    ? {
        host: m.host,
        pid: m.pid,
        processStart: typeof m.processStart === 'string' ? m.processStart : null,
        boot: typeof m.boot === 'string' ? m.boot : null,
      }
    : null;
}

const kindOf = (stream: string): RunKind | null =>
  stream.startsWith('backup-')
    ? 'backup'
    : stream.startsWith('restore-')
      ? 'restore'
      : stream.startsWith('legacy-')
        ? 'convert'
        : stream === 'schedule'
          ? 'schedule'
          : null;

type D = Record<string, unknown>;
const num = (v: unknown) => (typeof v === 'number' ? v : null);
const str = (v: unknown) => (typeof v === 'string' ? v : null);

/** Bump when RunSummary or the folding changes: stored checkpoints are then rebuilt. */
export const RUN_HISTORY_VERSION = 1;

/**
 * Every run in the log, one summary each (backups, restores, conversions, scheduled slots),
 * with what it had done by its last event. A pure fold: stored as a checkpoint beside the log.
 */
export const runHistoryProjection: Projection<RunHistoryState> = {
  initial: { runs: {} },
  apply(s, e: RecordedEvent) {
    const kind = kindOf(e.stream);
    if (!kind) return s;
    const d = (e.data ?? {}) as D;
    const runId = str(d.runId) ?? e.stream;
    const key = kind === 'schedule' ? `schedule:${runId}` : e.stream;
    if (kind === 'schedule' && e.type === 'ScheduleChanged') return s;
    let r = s.runs[key];
    if (!r) {
      r = {
        runId,
        kind,
        stream: e.stream,
        position: e.position,
        startedAt: e.at,
        endedAt: null,
        outcome: 'RUNNING',
        srUuid: str(d.srUuid),
        vmCount: null,
        templateCount: null,
        restored: null,
        errors: null,
        converted: null,
        seq: null,
        dryRun: typeof d.dryRun === 'boolean' ? d.dryRun : null,
        code: null,
        reason: null,
        owner: ownerOf(e.metadata),
        lastEvent: e.type,
        events: 0,
      };
      s.runs[key] = r;
    }
    r.events++;
    r.lastEvent = e.type;
    r.owner = r.owner ?? ownerOf(e.metadata);
    const end = (outcome: RunOutcome) => {
      r.outcome = outcome;
      r.endedAt = e.at;
      r.code = str(d.code) ?? r.code;
      r.reason = str(d.reason) ?? str(d.error) ?? r.reason;
    };
    switch (e.type) {
      case 'BackupPartsCaptured':
      case 'BackupWritten':
        r.vmCount = num(d.vmCount);
        r.templateCount = num(d.templateCount);
        r.seq = num(d.seq) ?? r.seq;
        if (e.type === 'BackupWritten') end('SUCCESS');
        break;
      case 'BackupFailed':
      case 'LegacyConvertFailed':
        end(d.code === 'INTERRUPTED' ? 'INTERRUPTED' : 'FAILED');
        break;
      case 'VmRestored':
        r.restored = (r.restored ?? 0) + 1;
        break;
      case 'VmRestoreFailed':
        r.errors = (r.errors ?? 0) + 1;
        break;
      case 'RestoreRequested':
        r.restored = 0;
        r.errors = 0;
        r.seq = num(d.seq);
        break;
      case 'RestoreFinished':
      case 'RestoreInterrupted':
        r.restored = num(d.restored);
        r.errors = num(d.errors);
        end(e.type === 'RestoreFinished' ? 'SUCCESS' : 'INTERRUPTED');
        break;
      case 'RestoreRefused':
        end('REFUSED');
        break;
      case 'LegacyConvertStarted':
        r.converted = 0;
        break;
      case 'LegacyBackupConverted':
        r.converted = (r.converted ?? 0) + 1;
        break;
      case 'LegacyConvertFinished':
        r.converted = num(d.converted);
        end('SUCCESS');
        break;
      case 'ScheduledRunFinished':
        r.srUuid = str(d.srUuid) ?? r.srUuid;
        end(d.outcome === 'success' ? 'SUCCESS' : 'FAILED');
        break;
    }
    return s;
  },
};

/**
 * The runs, newest first; a run not ended whose owner `gone` says has died is ABANDONED (one
 * with no owner recorded, written before runs recorded theirs, too).
 */
export function runHistory(s: RunHistoryState, gone: (owner: RunOwner) => boolean): RunSummary[] {
  return Object.values(s.runs)
    .map((r) =>
      r.outcome === 'RUNNING' && (r.owner === null || gone(r.owner))
        ? { ...r, outcome: 'ABANDONED' as const }
        : r,
    )
    .sort((a, b) => b.position - a.position);
}
