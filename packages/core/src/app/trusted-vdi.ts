import { resolveSr } from './catalogue.js';
import { AppError } from './errors.js';
import type { PoolPort } from './ports.js';

/**
 * A backup VDI the user names (`xe-restore-metadata -x`, without -o) is trusted only when it
 * is the SR's own: the one whose uuid xapi derives from the SR's, which no guest can choose
 * (XSA-459). Any other is UNTRUSTED_VDI, whatever it holds; -o is the way to read another.
 * Resolves the SR (named, else the pool's default) and returns it.
 */
export async function checkNamedBackupVdi(
  pool: Pick<PoolPort, 'pool' | 'backupVdiUuid'>,
  srUuid: string | undefined,
  namedVdi: string,
): Promise<string> {
  const sr = await resolveSr(pool, srUuid);
  const own = pool.backupVdiUuid(sr);
  if (namedVdi !== own)
    throw new AppError(
      'UNTRUSTED_VDI',
      `refusing VDI ${namedVdi}: only the SR's own backup VDI (${own}) is trusted; -o allows legacy VDIs`,
    );
  return sr;
}
