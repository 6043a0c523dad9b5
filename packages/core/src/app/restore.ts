import { restoreDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { type BackupListing, backupVdiOf, listings, withRing } from './catalogue.js';
import { AppError, errorCode } from './errors.js';
import { newRunId, runStream } from './handle.js';
import { DEFAULT_PARALLEL, mapLimit } from './map-limit.js';
import { NetworkGuard } from './network-guard.js';
import type { ArchivePort, DiskPort, PoolPort, Progress, SrInfo } from './ports.js';
import {
  checkFormatVersion,
  decodeSrMeta,
  PART,
  type SkippedVm,
  type SrMeta,
  type VmMapEntry,
} from './record.js';
import { splitRecord } from './record-frame.js';
import { readManifest } from './verify-record.js';

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

/** A backup as the restore reads it, whatever disk it came from (ring or legacy image). */
export interface BackupContent {
  date: string;
  seq: number | null;
  formatVersion: number;
  poolUuid: string;
  vmMap: VmMapEntry[];
  /**
   * A VM's metadata export. A ring record hands them out as it decodes its archive again, in
   * archive order (the vm-map's), so memory stays at a few parts, not the whole record.
   */
  vmExport(uuid: string): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  /** The VMs the restore will ask for, in order: the others are skipped, not held. */
  select?(uuids: readonly string[]): void;
  /** Ends the second decoding early (the restore asked for all it wanted). */
  release?(): Promise<void>;
  srmeta: SrMeta[];
  /** VMs the backup left out (a partial backup). */
  skipped?: SkippedVm[];
}

/**
 * Reads and checks one ring record: archive checksums, manifest, format version, every part
 * against the manifest, all before any change, in one decoding that holds only the VM map and
 * SRMETA (the pool database and the VM exports are checked as they stream past, not kept). The
 * VM exports are decoded a second time, as the imports ask for them (see
 * BackupContent.vmExport): memory is bounded by the restore's parallelism times the largest
 * export, not by the record or the pool.
 */
export async function readRecord(
  archive: ArchivePort,
  bytes: Uint8Array,
  listing: BackupListing,
): Promise<BackupContent> {
  const { parts, manifest: mbytes } = splitRecord(bytes);
  const manifest = await readManifest(archive, mbytes);
  const small = (name: string) => name === PART.vmMap || name === PART.srmeta;
  const files = new Map<string, Uint8Array>();
  const sums = new Map<string, string>();
  for await (const p of archive.read(parts, { keep: small })) {
    if (small(p.name)) files.set(p.name, p.data);
    sums.set(p.name, p.sha256);
  }
  for (const p of manifest.parts) {
    if (sums.get(p.name) !== p.sha256)
      throw new AppError(
        'BACKUP_DAMAGED',
        `backup ${listing.date}: part ${p.name} does not match its manifest`,
      );
  }
  const text = (name: string) => new TextDecoder().decode(files.get(name) ?? new Uint8Array());
  const vmMap = JSON.parse(text(PART.vmMap) || '[]') as VmMapEntry[];
  return {
    date: listing.date,
    seq: listing.seq,
    formatVersion: manifest.formatVersion,
    poolUuid: manifest.poolUuid,
    vmMap,
    ...exportsOnDemand(archive, parts, vmMap),
    srmeta: decodeSrMeta(text(PART.srmeta)),
    skipped: manifest.skipped ?? [],
  };
}

/**
 * The VM exports of a checked record, decoded again in archive order as they are asked for.
 * Only the exports of the VMs selected are held (an export asked for out of order by a
 * parallel import, until it is asked for); every other part streams past.
 */
function exportsOnDemand(
  archive: ArchivePort,
  parts: Uint8Array,
  vmMap: VmMapEntry[],
): Pick<BackupContent, 'vmExport' | 'select' | 'release'> {
  // The record's bytes, let go of once released (the names pass that follows lists the pool).
  let record: Uint8Array | null = parts;
  const byPart = new Map(vmMap.map((v) => [PART.vm(v.uuid, v.isTemplate), v.uuid]));
  const held = new Map<string, Uint8Array>();
  let wanted: Set<string> | null = null;
  const keep = (name: string) => {
    const u = byPart.get(name);
    return u !== undefined && (!wanted || wanted.has(u));
  };
  let stream: AsyncIterator<{ name: string; data: Uint8Array }> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  const pull = async (uuid: string): Promise<Uint8Array | undefined> => {
    const have = held.get(uuid);
    if (have) {
      held.delete(uuid);
      return have;
    }
    if (!record) return undefined; // released: the restore asked for all it wanted
    stream ??= archive.read(record, { keep })[Symbol.asyncIterator]();
    for (;;) {
      const r = await stream.next();
      if (r.done) return undefined;
      const u = byPart.get(r.value.name);
      if (u === uuid) return r.value.data;
      // Asked for out of order by a parallel import: kept until then; never asked: dropped.
      if (u !== undefined && keep(r.value.name)) held.set(u, r.value.data);
    }
  };
  return {
    vmExport: (uuid) => {
      const run = queue.then(() => pull(uuid));
      queue = run.catch(() => {});
      return run;
    },
    select: (uuids) => {
      wanted = new Set(uuids);
    },
    release: async () => {
      held.clear();
      record = null;
      await stream?.return?.();
      stream = null;
    },
  };
}

/** Errors that make one record unrestorable (the next newest may still be restored). */
const UNRESTORABLE = new Set([
  'RING_CORRUPT',
  'RING_TRUNCATED',
  'RING_EVICTED',
  'ARCHIVE_CORRUPT',
  'ARCHIVE_LIMIT',
  'BACKUP_DAMAGED',
  'BACKUP_INVALID',
  'BACKUP_FORMAT_UNSUPPORTED',
  // With a verify key configured: not signed, or not by that key (the ring's codes).
  'RING_UNSIGNED',
  'RING_BAD_SIGNATURE',
]);

/** Unrestorable for a reason other than damage: a date asked for fails with its own code. */
const REFUSED_AS_IS = new Set([
  'BACKUP_FORMAT_UNSUPPORTED',
  'ARCHIVE_LIMIT',
  'RING_UNSIGNED',
  'RING_BAD_SIGNATURE',
]);

/**
 * Chooses a record (by seq, by date, or the newest restorable one) and reads it, verified, in
 * one attachment of the disk. Without a seq or date, a newer record that cannot be restored
 * (damaged, beyond the shared record limits, written by a newer format) is skipped with one
 * line through `onNote`, naming why; a record asked for is never replaced by another.
 */
export async function loadBackup(
  deps: Pick<RestoreDeps, 'pool' | 'disk' | 'archive' | 'onNote'>,
  id: { srUuid: string; vdiUuid: string },
  date: string | undefined,
  seq?: number,
): Promise<BackupContent> {
  return withRing(deps.pool, deps.disk, id, true, async (ring) => {
    const all = listings(ring);
    if (all.length === 0)
      throw new AppError('NO_BACKUPS', `the backup VDI ${id.vdiUuid} holds no backups`);
    const asked = seq !== undefined || Boolean(date);
    const candidates =
      seq !== undefined
        ? all.filter((l) => l.seq === seq)
        : date
          ? all.filter((l) => l.date === date)
          : all;
    if (seq !== undefined && candidates.length === 0) {
      throw new AppError(
        'BACKUP_NOT_FOUND',
        `no backup with seq ${seq} on SR ${id.srUuid} (it may have been evicted by a newer backup): list the backups again and choose one of seq ${all.map((l) => l.seq).join(', ')}`,
      );
    }
    if (date && candidates.length === 0) {
      throw new AppError(
        'BACKUP_NOT_FOUND',
        `no backup dated ${date} on SR ${id.srUuid}; available: ${all.map((l) => l.date).join(', ')}`,
      );
    }
    const errors: unknown[] = [];
    for (const l of candidates) {
      try {
        checkFormatVersion(l.formatVersion);
        const bytes = await ring.readAll(l.seq);
        return await readRecord(deps.archive, bytes, l);
      } catch (e) {
        const code = errorCode(e);
        if (!code || !UNRESTORABLE.has(code)) throw e;
        if (asked) {
          if (REFUSED_AS_IS.has(code)) throw e;
          const good = all.find((x) => x.seq !== l.seq);
          throw new AppError(
            'BACKUP_DAMAGED',
            `backup ${l.date} (seq ${l.seq}) is damaged: ${(e as Error).message}${good ? `; the nearest other backup is ${good.date} (-d ${good.date})` : ''}`,
            { cause: e },
          );
        }
        errors.push(e);
        deps.onNote?.(
          `Skipping backup ${l.date} (seq ${l.seq}), which cannot be restored: ${code}: ${(e as Error).message}`,
        );
      }
    }
    const first = errors[0] as Error;
    // Nothing restorable: every record of a newer format says so as such (upgrade xsmeta).
    if (errors.every((e) => errorCode(e) === 'BACKUP_FORMAT_UNSUPPORTED')) throw first;
    throw new AppError(
      'BACKUP_DAMAGED',
      `no backup on SR ${id.srUuid} can be restored: ${first.message}`,
      { cause: first },
    );
  });
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
 * Sets the SR's and its VDIs' names from SRMETA where they differ from the live ones (a name
 * already right is not set again), the VDIs `parallel` at a time. The first failure stops it
 * (no VDI is started after it; those under way finish) and is thrown.
 */
async function restoreNames(
  pool: PoolPort,
  sr: SrMeta,
  live: SrInfo,
  parallel: number,
): Promise<void> {
  if (live.name !== sr.name || live.description !== sr.description)
    await pool.setSrNames(sr.uuid, sr.name, sr.description);
  const liveVdis = new Map(live.vdis.map((v) => [v.uuid, v]));
  const todo = sr.vdis.filter((v) => {
    const l = liveVdis.get(v.uuid);
    return l !== undefined && (l.name !== v.name || l.description !== v.description);
  });
  let failure: { e: unknown } | null = null;
  await mapLimit(todo, parallel, async (v) => {
    if (failure) return;
    try {
      await pool.setVdiNames(v.uuid, v.name, v.description);
    } catch (e) {
      failure ??= { e };
    }
  });
  if (failure) throw (failure as { e: unknown }).e;
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
  const present = new Map((await deps.pool.srs()).map((s) => [s.uuid, s]));
  const srs: RestoreResult['srs'] = [];
  for (const sr of content.srmeta) {
    if (opts.mode === 'sr' && sr.uuid !== id.srUuid) continue;
    const live = present.get(sr.uuid);
    if (!live) {
      const reason = 'the SR is not attached to this pool';
      await rec.exec({ type: 'SkipSrMetadata', data: { runId, srUuid: sr.uuid, reason } });
      srs.push({ uuid: sr.uuid, restored: false, reason });
      continue;
    }
    try {
      if (!opts.dryRun) await restoreNames(deps.pool, sr, live, opts.parallel ?? DEFAULT_PARALLEL);
      await rec.exec({
        type: 'RecordSrMetadata',
        data: { runId, srUuid: sr.uuid, vdis: sr.vdis.length, dryRun: opts.dryRun },
      });
      srs.push({ uuid: sr.uuid, restored: true });
    } catch (e) {
      const reason = (e as Error).message;
      await rec.exec({ type: 'SkipSrMetadata', data: { runId, srUuid: sr.uuid, reason } });
      srs.push({ uuid: sr.uuid, restored: false, reason });
    }
  }
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
