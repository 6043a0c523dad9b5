import type { BackupVdiContent } from '../domain/legacy.js';
import { chooseSr } from '../domain/rules.js';
import { AppError, errorCode, legacyOnBackupVdi } from './errors.js';
import type { Attachment, DiskPort, PoolPort, RingPort } from './ports.js';
import { decodeLabel } from './record.js';

export interface BackupListing {
  seq: number;
  date: string;
  createdAt: string;
  formatVersion: number;
  poolUuid: string;
  srUuid: string;
  vmCount: number;
  templateCount: number;
  rawBytes: number;
  storedBytes: number;
  converted: boolean;
  /** Present on a partial backup: how many VMs it left out. */
  skippedVms?: number;
}

/**
 * The SR a run works on: the one named, else the pool's default SR (asked only when none is
 * named), else NO_DEFAULT_SR, which says to name one with -u / --sr. Every command and the
 * console resolve their SR here, once per run.
 */
export async function resolveSr(
  pool: Pick<PoolPort, 'pool'>,
  named: string | null | undefined,
): Promise<string> {
  const choice = chooseSr(named, named ? null : (await pool.pool()).defaultSrUuid);
  if ('code' in choice) throw new AppError(choice.code, choice.reason);
  return choice.srUuid;
}

/** Finds the SR's backup VDI by its deterministic uuid (never by scanning: XSA-459). */
export async function backupVdiOf(
  pool: PoolPort,
  srUuid: string | undefined,
): Promise<{ srUuid: string; vdiUuid: string }> {
  const sr = await resolveSr(pool, srUuid);
  const vdiUuid = pool.backupVdiUuid(sr);
  const vdi = await pool.findVdi(vdiUuid);
  if (!vdi || vdi.srUuid !== sr) {
    throw new AppError(
      'BACKUP_VDI_MISSING',
      `SR ${sr} has no Pool Metadata Backup VDI (${vdiUuid})`,
    );
  }
  return { srUuid: sr, vdiUuid };
}

/**
 * Attaches a VDI, opens a ring on it with `open`, runs fn on the ring, then closes the ring
 * and always detaches: the one shape of every use of a backup VDI's ring.
 */
export async function onRing<T>(
  pool: Pick<PoolPort, 'attach'>,
  vdiUuid: string,
  readOnly: boolean,
  open: (att: Attachment) => Promise<RingPort>,
  fn: (ring: RingPort) => Promise<T>,
): Promise<T> {
  const att = await pool.attach(vdiUuid, { readOnly });
  try {
    const ring = await open(att);
    try {
      return await fn(ring);
    } finally {
      await ring.close();
    }
  } finally {
    await att.detach();
  }
}

/** Attaches the backup VDI (read-only unless asked), runs fn on its ring, and always detaches. */
export async function withRing<T>(
  pool: PoolPort,
  disk: DiskPort,
  id: { srUuid: string; vdiUuid: string },
  readOnly: boolean,
  fn: (ring: RingPort) => Promise<T>,
): Promise<T> {
  const open = async (att: Attachment): Promise<RingPort> => {
    try {
      return await disk.open(att.devicePath, { readOnly, expect: id });
    } catch (e) {
      if (errorCode(e) === 'RING_FOREIGN') throw legacyOnBackupVdi(id, e);
      if (errorCode(e) === 'RING_NOT_FORMATTED')
        throw new AppError('NO_BACKUPS', `the backup VDI ${id.vdiUuid} holds no backups yet`, {
          cause: e,
        });
      throw e;
    }
  };
  return onRing(pool, id.vdiUuid, readOnly, open, fn);
}

/**
 * The ring's records as listings, newest date first, from the index alone. By date, not by
 * sequence: a converted legacy backup is appended after newer ones but keeps its own date.
 */
export function listings(ring: RingPort): BackupListing[] {
  const all = ring.list().map((r) => {
    const l = decodeLabel(r.label);
    return {
      seq: r.seq,
      date: l?.date ?? `unknown-${r.seq}`,
      createdAt: new Date(l?.createdAt || r.createdAt).toISOString(),
      formatVersion: l?.formatVersion ?? 0,
      poolUuid: l?.poolUuid ?? '',
      srUuid: l?.srUuid ?? '',
      vmCount: l?.vmCount ?? 0,
      templateCount: l?.templateCount ?? 0,
      rawBytes: l?.rawBytes ?? 0,
      storedBytes: r.size,
      converted: l?.converted ?? false,
      ...(l?.skipped ? { skippedVms: l.skipped } : {}),
    };
  });
  return all.sort((a, b) => (a.date === b.date ? b.seq - a.seq : a.date < b.date ? 1 : -1));
}

/**
 * What the SR's backup VDI holds, for `legacyAccess`: a ring, an ext3 legacy image (upstream's
 * scripts write theirs to the same deterministic VDI), nothing yet, or something unreadable.
 * Null when the SR has no backup VDI. Attaches read-only and always detaches.
 */
export async function backupVdiContent(
  pool: PoolPort,
  disk: DiskPort,
  srUuid: string,
): Promise<{ uuid: string; holds: BackupVdiContent } | null> {
  const vdiUuid = pool.backupVdiUuid(srUuid);
  const vdi = await pool.findVdi(vdiUuid);
  if (!vdi || vdi.srUuid !== srUuid) return null;
  const att = await pool.attach(vdiUuid, { readOnly: true });
  try {
    const ring = await disk.open(att.devicePath, {
      readOnly: true,
      expect: { vdiUuid, srUuid },
    });
    await ring.close();
    return { uuid: vdiUuid, holds: 'ring' };
  } catch (e) {
    const code = errorCode(e);
    const holds: BackupVdiContent =
      code === 'RING_FOREIGN' ? 'legacy' : code === 'RING_NOT_FORMATTED' ? 'blank' : 'unreadable';
    return { uuid: vdiUuid, holds };
  } finally {
    await att.detach();
  }
}
