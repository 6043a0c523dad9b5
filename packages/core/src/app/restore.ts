import { restoreDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { mapLimit, splitRecord } from './backup.js';
import { type BackupListing, backupVdiOf, listings, withRing } from './catalogue.js';
import { AppError, errorCode } from './errors.js';
import { newRunId, runStream } from './handle.js';
import type { ArchivePort, DiskPort, PoolPort, Progress } from './ports.js';
import {
  checkFormatVersion,
  decodeSrMeta,
  type Manifest,
  PART,
  type SrMeta,
  type VmMapEntry,
} from './record.js';

export interface RestoreDeps {
  pool: PoolPort;
  disk: DiskPort;
  archive: ArchivePort;
  clock: Clock;
  events: EventStore | null;
  progress?: Progress;
  /** Called for each VM as it is restored (or would be) or fails. */
  onVm?: (r: VmOutcome) => void;
}

export interface RestoreOptions {
  srUuid?: string;
  /** `YYYY-MM-DD-HH-MM-SS`; default: the newest record that verifies. */
  date?: string;
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
}

/** A backup as the restore reads it, whatever disk it came from (ring or legacy image). */
export interface BackupContent {
  date: string;
  seq: number | null;
  formatVersion: number;
  poolUuid: string;
  vmMap: VmMapEntry[];
  vmExport(uuid: string): Uint8Array | undefined;
  srmeta: SrMeta[];
}

/** Reads and checks one ring record into memory: archive checksums, manifest, format version. */
export async function readRecord(
  archive: ArchivePort,
  bytes: Uint8Array,
  listing: BackupListing,
): Promise<BackupContent> {
  const { parts, manifest: mbytes } = splitRecord(bytes);
  let manifest: Manifest | null = null;
  for await (const p of archive.read(mbytes))
    if (p.name === PART.manifest)
      manifest = JSON.parse(new TextDecoder().decode(p.data)) as Manifest;
  if (!manifest) throw new AppError('BACKUP_INVALID', `backup ${listing.date} has no manifest`);
  checkFormatVersion(manifest.formatVersion);
  const files = new Map<string, Uint8Array>();
  const sums = new Map<string, string>();
  for await (const p of archive.read(parts)) {
    files.set(p.name, p.data);
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
    vmExport: (uuid) => {
      const e = vmMap.find((v) => v.uuid === uuid);
      return e ? files.get(PART.vm(uuid, e.isTemplate)) : undefined;
    },
    srmeta: decodeSrMeta(text(PART.srmeta)),
  };
}

/** Chooses a record (by date, or the newest that verifies) and reads it, verified. */
export async function loadBackup(
  deps: Pick<RestoreDeps, 'pool' | 'disk' | 'archive'>,
  id: { srUuid: string; vdiUuid: string },
  date: string | undefined,
): Promise<BackupContent> {
  return withRing(deps.pool, deps.disk, id, true, async (ring) => {
    const all = listings(ring);
    if (all.length === 0)
      throw new AppError('NO_BACKUPS', `the backup VDI ${id.vdiUuid} holds no backups`);
    const candidates = date ? all.filter((l) => l.date === date) : all;
    if (date && candidates.length === 0) {
      throw new AppError(
        'BACKUP_NOT_FOUND',
        `no backup dated ${date} on SR ${id.srUuid}; available: ${all.map((l) => l.date).join(', ')}`,
      );
    }
    let firstError: unknown = null;
    for (const l of candidates) {
      try {
        checkFormatVersion(l.formatVersion);
        const bytes = await ring.readAll(l.seq);
        return await readRecord(deps.archive, bytes, l);
      } catch (e) {
        const code = errorCode(e);
        if (code === 'BACKUP_FORMAT_UNSUPPORTED') throw e;
        const damaged =
          code === 'RING_CORRUPT' ||
          code === 'ARCHIVE_CORRUPT' ||
          code === 'BACKUP_DAMAGED' ||
          code === 'BACKUP_INVALID';
        if (!damaged) throw e;
        firstError ??= e;
        if (date) {
          const good = all.find((x) => x.seq !== l.seq);
          throw new AppError(
            'BACKUP_DAMAGED',
            `backup ${l.date} (seq ${l.seq}) is damaged: ${(e as Error).message}${good ? `; the nearest other backup is ${good.date} (-d ${good.date})` : ''}`,
            { cause: e },
          );
        }
      }
    }
    throw new AppError(
      'BACKUP_DAMAGED',
      `no backup on SR ${id.srUuid} verifies: ${(firstError as Error).message}`,
      { cause: firstError },
    );
  });
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
  const info = await deps.pool.pool();
  const id = source?.id ?? (await backupVdiOf(deps.pool, opts.srUuid));
  let content: BackupContent;
  try {
    content = source?.content ?? (await loadBackup(deps, id, opts.date));
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
  const vms = await mapLimit(chosen, opts.parallel ?? 8, async (vm): Promise<VmOutcome> => {
    const body = content.vmExport(vm.uuid);
    let out: VmOutcome;
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
      try {
        await deps.pool.importMetadata(body, { force: opts.force, dryRun: opts.dryRun });
        out = { uuid: vm.uuid, name: vm.name, isTemplate: vm.isTemplate, ok: true };
      } catch (e) {
        const params = ((e as { params?: unknown }).params as string[] | undefined) ?? [];
        out = {
          uuid: vm.uuid,
          name: vm.name,
          isTemplate: vm.isTemplate,
          ok: false,
          code: errorCode(e) ?? 'ERROR',
          params,
          message: (e as Error).message,
        };
      }
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
    deps.progress?.({
      phase: 'restore',
      done: ++done,
      total: chosen.length,
      bytes: body?.length ?? 0,
      item: vm.name,
    });
    deps.onVm?.(out);
    return out;
  });
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
      if (!opts.dryRun) {
        await deps.pool.setSrNames(sr.uuid, sr.name, sr.description);
        const liveVdis = new Set(live.vdis.map((v) => v.uuid));
        for (const v of sr.vdis)
          if (liveVdis.has(v.uuid)) await deps.pool.setVdiNames(v.uuid, v.name, v.description);
      }
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
  };
}
