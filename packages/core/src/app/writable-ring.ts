/**
 * The SR's backup VDI for a run that writes to it, found or made once: by its deterministic
 * uuid (never by a scan: XSA-459) and on that SR, created when missing only when asked, then
 * opened for writing, formatted when just created or blank. `xsmeta import` runs on it; the
 * backup's own run (backup.ts) and a conversion follow the same rule.
 */
import { DEFAULT_KEEP, DEFAULT_VDI_SIZE, openOrFormat } from './backup.js';
import { onRing } from './catalogue.js';
import { AppError } from './errors.js';
import type { DiskPort, PoolPort, RingPort } from './ports.js';

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

/**
 * Runs fn on the SR's ring opened for writing (see findOrCreateBackupVdi; a VDI just created,
 * or a blank one, is formatted first), then closes it and always detaches.
 */
export async function withWritableRing<T>(
  deps: { pool: PoolPort; disk: DiskPort },
  opts: { srUuid: string; create: boolean; vdiSize?: number; keep?: number },
  fn: (ring: RingPort) => Promise<T>,
): Promise<T> {
  const { srUuid } = opts;
  const { vdiUuid, created } = await findOrCreateBackupVdi(deps.pool, srUuid, opts);
  return onRing(
    deps.pool,
    vdiUuid,
    false,
    (att) =>
      openOrFormat(
        deps.disk,
        att,
        { vdiUuid, srUuid },
        { reinit: false, justCreated: created, keep: opts.keep ?? DEFAULT_KEEP },
      ),
    fn,
  );
}
