import { restoreDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { type BackupListing, backupVdiOf, listings, withRing } from './catalogue.js';
import { AppError, errorCode } from './errors.js';
import { newRunId, runStream } from './handle.js';
import { mapLimit } from './map-limit.js';
import type { ArchivePort, DiskPort, NetworkKey, PoolPort, Progress } from './ports.js';
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
  /**
   * Starts handing out exports from the archive's start again, for the VMs named (another
   * pass: an export is handed out once a pass, so that memory stays bounded).
   */
  rewind?(uuids: readonly string[]): Promise<void>;
  srmeta: SrMeta[];
  /** VMs the backup left out (a partial backup). */
  skipped?: SkippedVm[];
}

/**
 * Reads and checks one ring record: archive checksums, manifest, format version, every part
 * against the manifest, all before any change; keeps only the VM map and SRMETA. The VM
 * exports are decoded again when asked for (see BackupContent.vmExport): memory is bounded by
 * the restore's parallelism times the largest part, not by the record.
 */
export async function readRecord(
  archive: ArchivePort,
  bytes: Uint8Array,
  listing: BackupListing,
): Promise<BackupContent> {
  const { parts, manifest: mbytes } = splitRecord(bytes);
  const manifest = await readManifest(archive, mbytes);
  const files = new Map<string, Uint8Array>();
  const sums = new Map<string, string>();
  for await (const p of archive.read(parts)) {
    if (p.name === PART.vmMap || p.name === PART.srmeta) files.set(p.name, p.data);
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

/** The VM exports of a checked record, decoded again in archive order as they are asked for. */
function exportsOnDemand(
  archive: ArchivePort,
  parts: Uint8Array,
  vmMap: VmMapEntry[],
): Pick<BackupContent, 'vmExport' | 'select' | 'release' | 'rewind'> {
  const byPart = new Map(vmMap.map((v) => [PART.vm(v.uuid, v.isTemplate), v.uuid]));
  const held = new Map<string, Uint8Array>();
  let wanted: Set<string> | null = null;
  let stream: AsyncIterator<{ name: string; data: Uint8Array }> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  const pull = async (uuid: string): Promise<Uint8Array | undefined> => {
    const have = held.get(uuid);
    if (have) {
      held.delete(uuid);
      return have;
    }
    stream ??= archive.read(parts)[Symbol.asyncIterator]();
    for (;;) {
      const r = await stream.next();
      if (r.done) return undefined;
      const u = byPart.get(r.value.name);
      if (u === uuid) return r.value.data;
      // Asked for out of order by a parallel import: kept until then; never asked: dropped.
      if (u !== undefined && (!wanted || wanted.has(u))) held.set(u, r.value.data);
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
      await stream?.return?.();
    },
    rewind: (uuids) => {
      const run = queue.then(async () => {
        held.clear();
        await stream?.return?.();
        stream = null;
        wanted = new Set(uuids);
      });
      queue = run.catch(() => {});
      return run;
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
 * Imports the chosen VMs without ever letting two imports create the same network. xapi's
 * import looks a network up by name_label, then by bridge, and creates it when neither
 * matches, with no lock between the look-up and the create (module Net in
 * ocaml/xapi/import.ml): parallel imports that need the same missing network each create
 * one. So each VM that needs a network the pool lacks (one not yet created by an earlier
 * import of this run) is imported alone, in order; once every missing network exists the
 * rest go in parallel. A failed import creates nothing, so the next VM needing its networks
 * goes alone in its turn. A dry run creates nothing and goes in parallel.
 */
async function importInOrder(
  pool: PoolPort,
  chosen: VmMapEntry[],
  content: BackupContent,
  opts: RestoreOptions,
  importOne: (vm: VmMapEntry) => Promise<VmOutcome>,
  signal: AbortSignal | undefined,
): Promise<VmOutcome[]> {
  const parallel = opts.parallel ?? 8;
  const all = chosen.map((v) => v.uuid);
  content.select?.(all);
  if (opts.dryRun || !pool.networks || !pool.exportNetworks)
    return mapLimit(chosen, parallel, importOne, signal);
  const present = await pool.networks();
  const names = new Set(present.map((n) => n.name));
  const bridges = new Set(present.map((n) => n.bridge));
  // Keys of the networks still to be created: a name and a bridge each (xapi matches either).
  const unsettled = new Set<string>();
  const keysOf = async (vm: VmMapEntry): Promise<string[]> => {
    const body = await content.vmExport(vm.uuid);
    if (!body) return [];
    let nets: NetworkKey[];
    try {
      nets = pool.exportNetworks!(body);
    } catch {
      return [];
    }
    const keys: string[] = [];
    for (const n of nets) {
      if (names.has(n.name) || (n.bridge !== '' && bridges.has(n.bridge))) continue;
      keys.push(`name:${n.name}`);
      if (n.bridge !== '') keys.push(`bridge:${n.bridge}`);
    }
    return keys;
  };
  // A first pass over the exports (in archive order, one at a time) finds the networks each VM
  // needs; a record's exports are then read again from the start for the imports.
  const needs = new Map<string, string[]>();
  for (const vm of chosen) {
    if (signal?.aborted) return [];
    needs.set(vm.uuid, await keysOf(vm));
  }
  for (const keys of needs.values()) for (const k of keys) unsettled.add(k);
  if (unsettled.size === 0) {
    await content.rewind?.(all);
    return mapLimit(chosen, parallel, importOne, signal);
  }
  // Those that may have to go alone are read in one pass (the others are not held meanwhile),
  // the rest in another, in parallel.
  const outcomes = new Map<string, VmOutcome>();
  const later: VmMapEntry[] = [];
  await content.rewind?.(chosen.filter((vm) => needs.get(vm.uuid)!.length > 0).map((v) => v.uuid));
  for (const vm of chosen) {
    if (signal?.aborted) return [];
    const mine = needs.get(vm.uuid)!.filter((k) => unsettled.has(k));
    if (mine.length === 0) {
      later.push(vm);
      continue;
    }
    const out = await importOne(vm);
    outcomes.set(vm.uuid, out);
    if (out.ok) for (const k of mine) unsettled.delete(k);
  }
  await content.rewind?.(later.map((v) => v.uuid));
  for (const out of await mapLimit(later, parallel, importOne, signal))
    if (out) outcomes.set(out.uuid, out);
  return chosen.map((vm) => outcomes.get(vm.uuid)!);
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
  const importOne = async (vm: VmMapEntry): Promise<VmOutcome> => {
    const body = await content.vmExport(vm.uuid);
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
    missing: (content.skipped ?? []).filter(
      (v) => opts.mode === 'all' || v.srUuids.includes(id.srUuid),
    ),
  };
}
