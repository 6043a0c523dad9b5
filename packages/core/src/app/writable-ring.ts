/**
 * The SR's backup VDI for a run that writes to it, found or made once: by its deterministic
 * uuid (never by a scan: XSA-459) and on that SR, created when missing only when asked, then
 * opened for writing, formatted when just created or blank. `xsmeta import` runs on it; the
 * backup's own run (backup.ts) and a conversion follow the same rule.
 */
import { DEFAULT_KEEP, findOrCreateBackupVdi, openOrFormat } from './backup-ring.js';
import { onRing } from './catalogue.js';
import type { DiskPort, PoolPort, RingPort } from './ports.js';

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
