/**
 * Reading a backup for the restore: the record's one checking pass (archive checksums,
 * manifest, format version, every part) and the VM exports decoded again on demand, and the
 * choice of the record to restore (by seq, by date, or the newest restorable one).
 */

import { type BackupListing, listings, withRing } from './catalogue.js';
import { AppError, errorCode } from './errors.js';
import type { ArchivePort, DiskPort, PoolPort } from './ports.js';
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
  deps: { pool: PoolPort; disk: DiskPort; archive: ArchivePort; onNote?: (line: string) => void },
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
