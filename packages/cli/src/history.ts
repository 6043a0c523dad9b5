import {
  type EventStore,
  RUN_HISTORY_VERSION,
  type RunKind,
  type RunSummary,
  readProjection,
  runHistory,
  runHistoryProjection,
} from '@xsmeta/core';
import { checkpointFiles } from './adapters/event-log.js';
import { UsageError } from './config.js';
import { ownerGone } from './process/owner.js';

/**
 * `xsmeta history`: the runs of this machine's event log, one line each, newest first, from
 * the run-history projection (its checkpoint beside the log plus the events since), or one
 * run's events. The query and the formatting live here; the command only wires flags.
 */

const KINDS: readonly RunKind[] = ['backup', 'restore', 'convert', 'schedule'];

export interface HistoryQuery {
  readonly run?: string | undefined;
  readonly since?: string | undefined;
  readonly kind?: string | undefined;
  readonly json: boolean;
}

/** The runs, with those whose process died marked ABANDONED. */
export async function loadRuns(store: EventStore, stateDir: string): Promise<RunSummary[]> {
  const state = await readProjection(store, runHistoryProjection, {
    name: 'run-history',
    version: RUN_HISTORY_VERSION,
    checkpoints: checkpointFiles(stateDir),
  });
  return runHistory(state, (o) =>
    ownerGone({ host: o.host, pid: o.pid, boot: o.boot, start: o.processStart }),
  );
}

function sinceOf(v: string | undefined): string | null {
  if (v === undefined) return null;
  const t = Date.parse(v);
  if (Number.isNaN(t))
    throw new UsageError(
      `--since takes a date or time (e.g. 2026-11-30 or 2026-11-30T08:00:00Z), not ${JSON.stringify(v)}`,
    );
  return new Date(t).toISOString();
}

function kindOf(v: string | undefined): RunKind | null {
  if (v === undefined) return null;
  if (!(KINDS as readonly string[]).includes(v))
    throw new UsageError(`--kind must be one of ${KINDS.join(', ')}, not ${JSON.stringify(v)}`);
  return v as RunKind;
}

/** What a run did, in words: its counts, by kind. */
function counts(r: RunSummary): string {
  const parts: string[] = [];
  if (r.vmCount !== null) parts.push(`${r.vmCount} VM(s), ${r.templateCount ?? 0} template(s)`);
  if (r.restored !== null) parts.push(`${r.restored} restored, ${r.errors ?? 0} error(s)`);
  if (r.converted !== null) parts.push(`${r.converted} converted`);
  if (r.seq !== null) parts.push(`seq ${r.seq}`);
  if (r.dryRun) parts.push('dry run');
  return parts.join(', ') || '-';
}

/** One line per run: start, kind, outcome, end, SR, counts, run id (and why, when it failed). */
export function runLine(r: RunSummary): string {
  const why =
    r.outcome === 'ABANDONED'
      ? `  (its process ${r.owner ? `${r.owner.pid} on ${r.owner.host} ` : ''}is gone; last recorded: ${r.lastEvent})`
      : r.code
        ? `  (${r.code}${r.reason && r.reason !== r.code ? `: ${r.reason}` : ''})`
        : '';
  return [
    r.startedAt,
    r.kind.padEnd(8),
    r.outcome.padEnd(11),
    `ended ${r.endedAt ?? '-'}`,
    `SR ${r.srUuid ?? '-'}`,
    counts(r),
    `run ${r.runId}${why}`,
  ].join('  ');
}

/** Prints the history as asked; returns the exit status. */
export async function printHistory(
  store: EventStore,
  stateDir: string,
  q: HistoryQuery,
  out: (line: string) => void,
): Promise<number> {
  const since = sinceOf(q.since);
  const kind = kindOf(q.kind);
  const runs = await loadRuns(store, stateDir);
  if (q.run !== undefined) {
    const r = runs.find((x) => x.runId === q.run);
    if (!r) throw new UsageError(`no run ${q.run} in the history: 'xsmeta history' lists them`);
    const events = [];
    for await (const e of store.readStream(r.stream))
      if (r.kind !== 'schedule' || (e.data as { runId?: string } | null)?.runId === r.runId)
        events.push({
          position: e.position,
          stream: e.stream,
          type: e.type,
          at: e.at,
          data: e.data,
        });
    if (q.json) out(JSON.stringify(events));
    else for (const e of events) out(`${e.at}  ${e.type}  ${JSON.stringify(e.data)}`);
    return 0;
  }
  const chosen = runs.filter(
    (r) => (since === null || r.startedAt >= since) && (kind === null || r.kind === kind),
  );
  if (q.json) {
    out(JSON.stringify(chosen.map(({ stream: _s, position: _p, ...r }) => r)));
    return 0;
  }
  if (chosen.length === 0) {
    out(
      runs.length === 0
        ? 'No runs recorded yet: the history is empty.'
        : 'No run matches (see xsmeta history without --since / --kind).',
    );
    return 0;
  }
  for (const r of chosen) out(runLine(r));
  return 0;
}

/** The backup runs of an SR (or of every SR) whose process died: `xsmeta list` shows them. */
export async function abandonedBackups(
  store: EventStore,
  stateDir: string,
  srUuid: string | null,
): Promise<string[]> {
  const runs = await loadRuns(store, stateDir);
  return runs
    .filter(
      (r) =>
        r.kind === 'backup' &&
        r.outcome === 'ABANDONED' &&
        (srUuid === null || r.srUuid === srUuid),
    )
    .map(
      (r) =>
        `ABANDONED backup run ${r.runId} started ${r.startedAt}: ${counts(r)}; last recorded: ${r.lastEvent}`,
    );
}
