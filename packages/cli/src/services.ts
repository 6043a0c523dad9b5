import {
  type BackupResult,
  backupVdiOf,
  escapeText,
  loadBackup,
  type RestoreDeps,
  type RestoreResult,
  resolveSr,
  runBackup,
  runRestore,
  type VmOutcome,
} from '@xsmeta/core';
import { retryTiming } from './adapters/clock.js';
import { historyLostLine, preloadEventLog, withEvents } from './adapters/event-log.js';
import type { XapiPool } from './adapters/xapi-pool.js';
import type { Settings } from './config.js';
import { EXIT_PARTIAL, type Io } from './output.js';
import { lockSr } from './process/lock.js';
import type { Tick } from './process/progress.js';
import { growYoungGeneration } from './process/young-generation.js';
import { ports, withPool } from './root.js';

export interface BackupArgs {
  srUuid?: string | undefined;
  create: boolean;
  keep?: number | undefined;
  reinit: boolean;
  findOnly: boolean;
  wait: boolean;
  trigger?: 'manual' | 'schedule';
  /** Where the run reports its progress (a terminal's bar), if anywhere. */
  progress?: ((t: Tick) => void) | undefined;
  /** Stops the capture (the console's Stop); clean-up still runs. */
  signal?: AbortSignal | undefined;
  /**
   * The process ends with this backup (a command, not the console): when the backup takes the
   * one-request export (its memory bounded), V8's young generation may grow
   * (see growYoungGeneration).
   */
  ownProcess?: boolean | undefined;
}

/**
 * The backup, as both front-ends run it: the SR resolved once (the lock and the backup use
 * the same), lock, capture, append, events persisted.
 */
export async function backup(s: Settings, a: BackupArgs, io: Io): Promise<BackupResult> {
  preloadEventLog(s.stateDir);
  return withPool(
    s,
    async (pool) => {
      const srUuid = await resolveSr(pool, a.srUuid);
      const unlock = await lockSr(s.stateDir, srUuid, a.wait);
      try {
        return await withEvents(
          s.stateDir,
          (events) =>
            runBackup(
              {
                pool,
                ...ports,
                events,
                ...(a.progress ? { progress: a.progress } : {}),
                ...(a.signal ? { signal: a.signal } : {}),
                sleep: (ms) => retryTiming.sleep(ms),
                onNote: (line) => io.err(`xsmeta: ${line}`),
                ...(a.ownProcess ? { onOneRequestExport: growYoungGeneration } : {}),
              },
              {
                srUuid,
                create: a.create,
                ...(a.keep ? { keep: a.keep } : {}),
                reinit: a.reinit,
                findOnly: a.findOnly,
                trigger: a.trigger ?? 'manual',
              },
            ),
          (e) => io.err(historyLostLine('backup', e)),
        );
      } finally {
        unlock();
      }
    },
    a.srUuid,
  );
}

/** A partial backup's lines for stderr (one per VM left out), and its exit status. */
export function partialBackup(r: BackupResult, io: Io): number {
  for (const v of r.skipped)
    io.err(
      `Left out ${v.isTemplate ? 'template' : 'VM'} ${escapeText(v.name)} (${v.uuid}): xapi kept refusing its export (${v.code})`,
    );
  if (r.skipped.length === 0) return 0;
  io.err(
    `Backup ${r.date} is partial: ${r.skipped.length} VM(s) left out; run the backup again once they are free`,
  );
  return EXIT_PARTIAL;
}

export interface RestoreArgs {
  srUuid?: string | undefined;
  date?: string | undefined;
  mode: 'sr' | 'all';
  dryRun: boolean;
  force: boolean;
  /** Where the run reports its progress (a terminal's bar), if anywhere. */
  progress?: ((t: Tick) => void) | undefined;
  /** The record by its sequence number (the console's choice): refused if it is gone. */
  seq?: number | undefined;
  /** Stops the restore between VMs (the console's Stop); clean-up still runs. */
  signal?: AbortSignal | undefined;
  /** Imports one VM at a time (default: core's parallelism). */
  parallel?: number | undefined;
  /** Each VM's outcome as it finishes (the console's per-VM list). */
  outcome?: RestoreDeps['onVm'];
}

/** One line per VM of a restore, as both restore commands print it. */
function vmLine(v: VmOutcome, dryRun: boolean): string {
  const name = escapeText(v.name); // a backup's: any guest may have chosen it
  return v.ok
    ? `${dryRun ? 'Would restore' : 'Restored'} ${v.isTemplate ? 'template' : 'VM'} ${name} (${v.uuid})`
    : escapeText(
        `Error restoring ${name} (${v.uuid}): ${v.code} ${(v.params ?? []).join(' ')}`.trim(),
      );
}

export function restore(
  s: Settings,
  a: RestoreArgs,
  io: Io,
  onVm?: (line: string) => void,
): Promise<RestoreResult> {
  return withPool(s, (pool) => restoreOn(pool, s, a, io, onVm), a.srUuid);
}

/** The restore on a connected pool, its events persisted; `source` is a legacy backup. */
export function restoreOn(
  pool: XapiPool,
  s: Settings,
  a: RestoreArgs,
  io: Io,
  onVm?: (line: string) => void,
  source?: Parameters<typeof runRestore>[2],
): Promise<RestoreResult> {
  return withEvents(
    s.stateDir,
    async (events) => {
      const r = await runRestore(
        {
          pool,
          ...ports,
          events,
          ...(a.progress ? { progress: a.progress } : {}),
          onVm: (v, at) => {
            onVm?.(vmLine(v, a.dryRun));
            a.outcome?.(v, at);
          },
          onNote: (line) => io.err(line),
          ...(a.signal ? { signal: a.signal } : {}),
        },
        {
          ...(a.srUuid ? { srUuid: a.srUuid } : {}),
          ...(a.date ? { date: a.date } : {}),
          ...(a.seq !== undefined ? { seq: a.seq } : {}),
          ...(a.parallel !== undefined ? { parallel: a.parallel } : {}),
          mode: a.mode,
          dryRun: a.dryRun,
          force: a.force,
        },
        source,
      );
      // A partial backup: say which VMs it cannot bring back.
      for (const v of r.missing)
        io.err(
          `This backup does not hold ${v.isTemplate ? 'template' : 'VM'} ${escapeText(v.name)} (${v.uuid}): it was left out when the backup was taken (${v.code})`,
        );
      return r;
    },
    (e) => io.err(historyLostLine('restore', e)),
  );
}

/** The backup a restore is about to use, as it is announced and confirmed. */
export interface ChosenBackup {
  date: string;
  seq: number | null;
  formatVersion: number;
  srUuid: string;
  vdiUuid: string;
}

/** `the backup of DATE (seq N, format F) on SR X`: how a restore names its backup. */
export function backupName(b: ChosenBackup): string {
  return `the backup of ${b.date} (seq ${b.seq ?? '-'}, format ${b.formatVersion}) on SR ${b.srUuid}`;
}

/**
 * A restore that first says which backup it uses (and, when the newest does not verify, that an
 * older one is taken), then asks `ask` about that backup (unless a dry run), then restores it.
 * Resolves null when the answer was no: nothing was changed. A backup that cannot be used is
 * refused by the restore itself, so that the refusal is recorded as always.
 */
export function restoreAsking(
  s: Settings,
  a: RestoreArgs,
  io: Io,
  onVm: ((line: string) => void) | undefined,
  ask: (b: ChosenBackup) => Promise<boolean>,
): Promise<RestoreResult | null> {
  return withPool(
    s,
    async (pool) => {
      let source: Parameters<typeof restoreOn>[5];
      try {
        const id = await backupVdiOf(pool, a.srUuid);
        const content = await loadBackup(
          { pool, ...ports, onNote: (line) => io.err(line) },
          id,
          a.date,
        );
        source = { id, content, legacy: false };
      } catch (e) {
        // Met again by a dry run, the refusal is recorded in the history; a backup that reads
        // this time is still not restored unasked.
        await restoreOn(pool, s, { ...a, dryRun: true }, io, undefined);
        throw e;
      }
      const b: ChosenBackup = { ...source.content, ...source.id };
      io.err(`Using ${backupName(b)}, VDI ${b.vdiUuid}.`);
      if (!a.dryRun && !(await ask(b))) return null;
      return restoreOn(pool, s, a, io, onVm, source);
    },
    a.srUuid,
  );
}
