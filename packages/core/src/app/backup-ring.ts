/**
 * The backup's ring side: open (or format) the ring on an attached backup VDI, list what a
 * ring holds before a re-initialisation, and append one record (parts, then manifest).
 */
import { ringAction } from '../domain/rules.js';
import { AppError, errorCode, legacyOnBackupVdi } from './errors.js';
import { fmtBytes } from './format.js';
import type { ArchivePort, Attachment, DiskPort, PoolPort, RingPort } from './ports.js';
import { decodeLabel, encodeLabel, type Manifest, PART } from './record.js';
import { joinRecord } from './record-frame.js';

/** The fewest records a ring is formatted for (the default of -k). */
export const DEFAULT_KEEP = 25;

/** The size of a new Pool Metadata Backup VDI (500 MiB). */
export const DEFAULT_VDI_SIZE = 500 * 1024 * 1024;

/**
 * Opens the ring on an attached backup VDI, formatting a blank one (never a foreign one, nor
 * one whose root is lost but which holds records: the ring refuses and points to repair).
 */
export async function openOrFormat(
  disk: DiskPort,
  att: Attachment,
  id: { vdiUuid: string; srUuid: string },
  opts: { reinit: boolean; justCreated?: boolean; keep: number },
): Promise<RingPort> {
  // A confirmed -i, or a VDI just created (ours whatever it holds: a thick LVM volume may hold
  // old bytes), is formatted whatever it holds; a blank one only when it holds no records.
  const format = (intent?: 'reinitialise') =>
    disk.format(att.devicePath, {
      ...id,
      maxRecords: Math.max(opts.keep, DEFAULT_KEEP),
      ...(intent ? { intent } : {}),
    });
  const rule = { reinit: opts.reinit, justCreated: opts.justCreated ?? false };
  if (ringAction({ ...rule, found: null }) === 'format') return format('reinitialise');
  try {
    return await disk.open(att.devicePath, { readOnly: false, expect: id });
  } catch (e) {
    const code = errorCode(e);
    const found =
      code === 'RING_FOREIGN' ? 'foreign' : code === 'RING_NOT_FORMATTED' ? 'not-formatted' : null;
    if (found === null) throw e;
    if (ringAction({ ...rule, found }) === 'refuse') throw legacyOnBackupVdi(id, e);
    return format();
  }
}

/** The backups a ring holds (none when the disk holds no ring of this VDI), before `-i`. */
export async function backupsOn(
  disk: DiskPort,
  att: Attachment,
  id: { vdiUuid: string; srUuid: string },
): Promise<{ seq: number; date: string }[]> {
  let ring: RingPort;
  try {
    ring = await disk.open(att.devicePath, { readOnly: true, expect: id });
  } catch {
    return [];
  }
  try {
    return ring.list().map((r) => ({ seq: r.seq, date: decodeLabel(r.label)?.date ?? '' }));
  } finally {
    await ring.close();
  }
}

/**
 * Appends one backup record to a ring: the parts archive, then a tiny archive holding the
 * manifest (so the manifest is written last), under a label that lets listing read no record.
 * A record that does not fit even after evicting down to `keep - 1` fails with
 * BACKUP_TOO_LARGE and changes nothing.
 */
export async function appendRecord(
  archive: ArchivePort,
  ring: RingPort,
  archived: { bytes: Uint8Array; rawBytes: number; parts: Manifest['parts'] },
  m: Omit<Manifest, 'parts'>,
  keep: number,
): Promise<{ seq: number; evicted: number[]; storedBytes: number }> {
  const manifest: Manifest = { ...m, parts: archived.parts };
  const tail = await archive.write(
    (async function* () {
      yield { name: PART.manifest, data: new TextEncoder().encode(JSON.stringify(manifest)) };
    })(),
    {},
  );
  const data = joinRecord(archived.bytes, tail.bytes);
  const label = encodeLabel({
    date: m.date,
    createdAt: m.createdAt,
    formatVersion: m.formatVersion,
    poolUuid: m.poolUuid,
    srUuid: m.srUuid,
    vmCount: m.vmCount,
    templateCount: m.templateCount,
    rawBytes: archived.rawBytes,
    ...(m.converted ? { converted: true } : {}),
    ...(m.skipped && m.skipped.length > 0 ? { skipped: m.skipped.length } : {}),
  });
  const before = ring.list().map((r) => r.seq);
  let appended: { seq: number };
  try {
    appended = await ring.append({ label, data, createdAt: m.createdAt, keep });
  } catch (e) {
    if (errorCode(e) === 'RING_FULL') {
      const u = ring.usage();
      throw new AppError(
        'BACKUP_TOO_LARGE',
        `this backup needs ${fmtBytes(data.length)} but the backup disk (${fmtBytes(u.capacity)}) has ${fmtBytes(u.free)} free after keeping the newest ${keep - 1} backup(s): lower -k, re-initialise with -i, or use a larger disk`,
        { cause: e },
      );
    }
    throw e;
  }
  const after = new Set(ring.list().map((r) => r.seq));
  return {
    seq: appended.seq,
    evicted: before.filter((s) => !after.has(s)),
    storedBytes: data.length,
  };
}

/**
 * The SR's backup VDI: found, or created when missing and `create` (else BACKUP_VDI_MISSING,
 * which says to add -c / --create). A VDI of that uuid on another SR is UNTRUSTED_VDI.
 */
export async function findOrCreateBackupVdi(
  pool: Pick<PoolPort, 'backupVdiUuid' | 'findVdi' | 'createBackupVdi'>,
  srUuid: string,
  opts: { create: boolean; vdiSize?: number },
): Promise<{ vdiUuid: string; created: boolean }> {
  const vdiUuid = pool.backupVdiUuid(srUuid);
  const vdi = await pool.findVdi(vdiUuid);
  if (vdi && vdi.srUuid !== srUuid)
    throw new AppError('UNTRUSTED_VDI', `VDI ${vdiUuid} is not on SR ${srUuid}`);
  if (vdi) return { vdiUuid, created: false };
  if (!opts.create)
    throw new AppError(
      'BACKUP_VDI_MISSING',
      `SR ${srUuid} has no Pool Metadata Backup VDI (${vdiUuid}): run again with -c to create it (xsmeta: --create)`,
    );
  await pool.createBackupVdi(srUuid, opts.vdiSize ?? DEFAULT_VDI_SIZE);
  return { vdiUuid, created: true };
}
