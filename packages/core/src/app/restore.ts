import { restoreDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { backupVdiOf } from './catalogue.js';
import { errorCode } from './errors.js';
import { newRunId, runStream } from './handle.js';
import { DEFAULT_PARALLEL, mapLimit } from './map-limit.js';
import { NetworkGuard } from './network-guard.js';
import type { ArchivePort, DiskPort, PoolPort, Progress } from './ports.js';
import type { SkippedVm, VmMapEntry } from './record.js';
import { restoreSrNames } from './restore-names.js';
import { type BackupContent, loadBackup } from './restore-record.js';

// The record's reading and choice live in restore-record.ts, the names pass in restore-names.ts.
export { type BackupContent, loadBackup, readRecord } from './restore-record.js';

export interface RestoreDeps {
  pool: PoolPort;
  disk: DiskPort;
  archive: ArchivePort;
  clock: Clock;
  events: EventStore | null;
  progress?: Progress;
  /**
   * Called for each VM as soon as it is restored (or would be) or fails, with how many of the
   * chosen VMs are finished (this one included).
   */
  onVm?: (r: VmOutcome, at: { done: number; total: number }) => void;
  /**
   * Stops the restore: no VM import starts once it is aborted (those under way finish and are
   * reported), the run is recorded as interrupted, and the restore rejects with the signal's
   * reason. Detaching the backup disk happens on every path.
   */
  signal?: AbortSignal;
  /** One line for each newer backup the default restore skips as unrestorable. */
  onNote?: (line: string) => void;
}

export interface RestoreOptions {
  srUuid?: string;
  /** `YYYY-MM-DD-HH-MM-SS`; default: the newest record that verifies. */
  date?: string;
  /** The record's sequence number (wins over `date`): refused with BACKUP_NOT_FOUND if gone. */
  seq?: number;
  mode: 'sr' | 'all';
  dryRun: boolean;
  force: boolean;
  parallel?: number;
}

export interface VmOutcome {
  uuid: string;
  name: string;
  isTemplate: boolean;
  ok: boolean;
  code?: string;
  params?: string[];
  message?: string;
}

export interface RestoreResult {
  srUuid: string;
  vdiUuid: string;
  date: string;
  seq: number | null;
  dryRun: boolean;
  restored: number;
  errors: number;
  vms: VmOutcome[];
  srs: { uuid: string; restored: boolean; reason?: string }[];
  /** VMs of the chosen scope that the backup does not hold (left out when it was taken). */
  missing: SkippedVm[];
}

/**
 * Imports the chosen VMs in one pass over the backup, `parallel` at a time, in the backup's
 * order, so that no two imports create the same missing network (NetworkGuard). A dry run
 * creates nothing and needs no guard; nor does a pool that cannot tell its networks.
 */
async function importInOrder(
  pool: PoolPort,
  chosen: VmMapEntry[],
  content: BackupContent,
  opts: RestoreOptions,
  importOne: (vm: VmMapEntry, guard: NetworkGuard | null) => Promise<VmOutcome>,
  signal: AbortSignal | undefined,
): Promise<VmOutcome[]> {
  content.select?.(chosen.map((v) => v.uuid));
  const guard =
    opts.dryRun || !pool.networks || !pool.exportNetworks
      ? null
      : new NetworkGuard(await pool.networks(), (body) => pool.exportNetworks!(body));
  return mapLimit(chosen, opts.parallel ?? DEFAULT_PARALLEL, (vm) => importOne(vm, guard), signal);
}

/**
 * Restores VM metadata from a backup: every VM and custom template (`all`), or those with a disk
 * on the SR (`sr`); one failure does not stop the others; then SR and VDI names from SRMETA.
 */
export async function runRestore(
  deps: RestoreDeps,
  opts: RestoreOptions,
  source?: { id: { srUuid: string; vdiUuid: string }; content: BackupContent; legacy: boolean },
): Promise<RestoreResult> {
  const now = deps.clock.now();
  const runId = newRunId(now);
  const rec = runStream(deps.events, `restore-${runId}`, restoreDecider, { runId });
  deps.signal?.throwIfAborted();
  const info = await deps.pool.pool();
  const id = source?.id ?? (await backupVdiOf(deps.pool, opts.srUuid));
  let content: BackupContent;
  try {
    content = source?.content ?? (await loadBackup(deps, id, opts.date, opts.seq));
  } catch (e) {
    await rec
      .exec({
        type: 'RefuseRestore',
        data: { runId, code: errorCode(e) ?? 'ERROR', reason: (e as Error).message },
      })
      .catch(() => {});
    throw e;
  }
  await rec.exec({
    type: 'RequestRestore',
    data: {
      runId,
      poolUuid: info.uuid,
      srUuid: id.srUuid,
      vdiUuid: id.vdiUuid,
      date: content.date,
      seq: content.seq,
      mode: opts.mode,
      dryRun: opts.dryRun,
      force: opts.force,
      legacy: source?.legacy ?? false,
      formatVersion: content.formatVersion,
    },
  });
  const chosen =
    opts.mode === 'sr' ? content.vmMap.filter((v) => v.srUuids.includes(id.srUuid)) : content.vmMap;
  let done = 0;
  let bytesDone = 0;
  const importOne = async (vm: VmMapEntry, guard: NetworkGuard | null): Promise<VmOutcome> => {
    const body = await content.vmExport(vm.uuid);
    let out: VmOutcome;
    const attempt = async (b: Uint8Array): Promise<VmOutcome> => {
      try {
        await deps.pool.importMetadata(b, { force: opts.force, dryRun: opts.dryRun });
        return { uuid: vm.uuid, name: vm.name, isTemplate: vm.isTemplate, ok: true };
      } catch (e) {
        const params = ((e as { params?: unknown }).params as string[] | undefined) ?? [];
        return {
          uuid: vm.uuid,
          name: vm.name,
          isTemplate: vm.isTemplate,
          ok: false,
          code: errorCode(e) ?? 'ERROR',
          params,
          message: (e as Error).message,
        };
      }
    };
    if (!body) {
      out = {
        uuid: vm.uuid,
        name: vm.name,
        isTemplate: vm.isTemplate,
        ok: false,
        code: 'BACKUP_INVALID',
        params: [],
        message: 'the backup holds no metadata export for this VM',
      };
    } else {
      out = guard
        ? await guard.around(
            body,
            () => attempt(body),
            (o) => o.ok,
          )
        : await attempt(body);
    }
    await rec.exec(
      out.ok
        ? {
            type: 'RecordVmRestored',
            data: {
              runId,
              vmUuid: vm.uuid,
              name: vm.name,
              isTemplate: vm.isTemplate,
              dryRun: opts.dryRun,
            },
          }
        : {
            type: 'RecordVmFailed',
            data: {
              runId,
              vmUuid: vm.uuid,
              name: vm.name,
              code: out.code!,
              params: out.params ?? [],
              message: out.message ?? '',
            },
          },
    );
    bytesDone += body?.length ?? 0;
    done++; // counted whether or not anyone listens to the progress
    deps.progress?.({
      phase: 'restore',
      done,
      total: chosen.length,
      bytes: bytesDone,
      item: vm.name,
    });
    deps.onVm?.(out, { done, total: chosen.length });
    return out;
  };
  const vms = await importInOrder(deps.pool, chosen, content, opts, importOne, deps.signal).finally(
    () => content.release?.(),
  );
  if (deps.signal?.aborted) {
    await rec
      .exec({ type: 'InterruptRestore', data: { runId, reason: 'stopped by the operator' } })
      .catch(() => {});
    deps.signal.throwIfAborted();
  }
  // SR and VDI names: an SR that is not in this pool is reported and skipped, never a stop.
  const inScope = content.srmeta.filter((sr) => opts.mode === 'all' || sr.uuid === id.srUuid);
  const srs: RestoreResult['srs'] = await restoreSrNames(
    deps.pool,
    inScope,
    { dryRun: opts.dryRun, parallel: opts.parallel ?? DEFAULT_PARALLEL },
    (sr, out) =>
      rec
        .exec(
          out.restored
            ? {
                type: 'RecordSrMetadata',
                data: { runId, srUuid: sr.uuid, vdis: sr.vdis.length, dryRun: opts.dryRun },
              }
            : { type: 'SkipSrMetadata', data: { runId, srUuid: sr.uuid, reason: out.reason! } },
        )
        .then(() => {}),
  );
  const [finished] = await rec.exec({ type: 'FinishRestore', data: { runId } });
  const summary = finished?.type === 'RestoreFinished' ? finished.data : { restored: 0, errors: 0 };
  return {
    srUuid: id.srUuid,
    vdiUuid: id.vdiUuid,
    date: content.date,
    seq: content.seq,
    dryRun: opts.dryRun,
    restored: summary.restored,
    errors: summary.errors,
    vms,
    srs,
    missing: (content.skipped ?? []).filter(
      (v) => opts.mode === 'all' || v.srUuids.includes(id.srUuid),
    ),
  };
}
