import type { EventStore, RunKind, RunSummary } from '@xsmeta/core';
import { HISTORY_PAGE } from './commands/options.js';
import { UsageError } from './config.js';
import { ownerGone } from './process/owner.js';
import { openRunIndex, type RunIndex } from './run-index.js';

/**
 * `xsmeta history`: the runs of this machine's event log, one line each, newest first, from
 * run index beside the log (see run-index.ts: it reads only as far as the listing goes), or
 * one run's events. The query and the formatting live here; the command only wires flags.
 */

const KINDS: readonly RunKind[] = ['backup', 'restore', 'convert', 'schedule'];

export interface HistoryQuery {
  readonly run?: string | undefined;
  readonly since?: string | undefined;
  readonly kind?: string | undefined;
  readonly json: boolean;
  /** Every run that matches, not only the newest HISTORY_PAGE. */
  readonly all?: boolean | undefined;
}

/** A run not ended whose process died (or that recorded no owner) is ABANDONED. */
function marked(r: RunSummary): RunSummary {
  return r.outcome === 'RUNNING' &&
    (r.owner === null ||
      ownerGone({
        host: r.owner.host,
        pid: r.owner.pid,
        boot: r.owner.boot,
        start: r.owner.processStart,
      }))
    ? { ...r, outcome: 'ABANDONED' }
    : r;
}

/**
 * The runs that match, newest first (by the position of their first event), at most `limit`:
 * the open runs, then the ended ones read from the end of the index only until no run not yet
 * read can be newer than the `limit`-th found (a run ends after it starts) or, with `since`,
 * until the runs read ended before it. `more`: runs were left unread that might match.
 */
async function selectRuns(
  idx: RunIndex,
  match: (r: RunSummary) => boolean,
  since: string | null,
  limit: number,
): Promise<{ runs: RunSummary[]; more: boolean }> {
  const found = idx.open.map(marked).filter(match);
  const newest = () => found.sort((a, b) => b.position - a.position);
  let more = false;
  for await (const { end, ...r } of idx.endedNewestFirst()) {
    if (found.length >= limit && newest()[limit - 1]!.position > end) {
      more = true;
      break;
    }
    if (since !== null && r.endedAt !== null && r.endedAt < since) break;
    if (match(r)) found.push(r);
  }
  const runs = newest();
  return { runs: runs.slice(0, limit), more: more || runs.length > limit };
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
  const idx = await openRunIndex(store, stateDir);
  if (q.run !== undefined) {
    const { runs } = await selectRuns(idx, (x) => x.runId === q.run, null, 1);
    const r = runs[0];
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
  const { runs: chosen, more } = await selectRuns(
    idx,
    (r) => (since === null || r.startedAt >= since) && (kind === null || r.kind === kind),
    since,
    // --json is read by programs: every run that matches, never a page of them.
    q.all || q.json ? Number.POSITIVE_INFINITY : HISTORY_PAGE,
  );
  if (q.json) {
    out(JSON.stringify(chosen.map(({ stream: _s, position: _p, ...r }) => r)));
    return 0;
  }
  if (chosen.length === 0) {
    out(
      idx.open.length + idx.endedCount === 0
        ? 'No runs recorded yet: the history is empty.'
        : 'No run matches (see xsmeta history without --since / --kind).',
    );
    return 0;
  }
  for (const r of chosen) out(runLine(r));
  if (more) out(`(the newest ${chosen.length} shown: --all shows every run)`);
  return 0;
}

/** The backup runs of an SR (or of every SR) whose process died: `xsmeta list` shows them. */
export async function abandonedBackups(
  store: EventStore,
  stateDir: string,
  srUuid: string | null,
): Promise<string[]> {
  const idx = await openRunIndex(store, stateDir);
  return idx.open
    .map(marked)
    .filter(
      (r) =>
        r.kind === 'backup' &&
        r.outcome === 'ABANDONED' &&
        (srUuid === null || r.srUuid === srUuid),
    )
    .sort((a, b) => b.position - a.position)
    .map(
      (r) =>
        `ABANDONED backup run ${r.runId} started ${r.startedAt}: ${counts(r)}; last recorded: ${r.lastEvent}`,
    );
}
