import type { ArchivePort, Clock, DiskPort, RingPort } from '@xsmeta/core';
import { AppError, backupVdiOf, withRing } from '@xsmeta/core/catalogue';
import { archive } from './adapters/archive.js';
import { systemClock } from './adapters/clock.js';
import { disk } from './adapters/disk.js';
import { connect } from './adapters/xapi-connection.js';
import { XapiPool } from './adapters/xapi-pool.js';
import type { Settings } from './config.js';

/**
 * The composition root: the one place where core's ports meet their adapters. A command (or the
 * console's services) gets the pool from `withPool` and the rest from `ports`, and calls core's
 * use cases with them; nothing else builds an adapter.
 */
export const ports: { disk: DiskPort; archive: ArchivePort; clock: Clock } = {
  disk,
  archive,
  clock: systemClock,
};

/**
 * Connects, checks that the SR named (if any) is one of the pool's, runs fn with the pool
 * port, and always logs out.
 */
export async function withPool<T>(
  s: Settings,
  fn: (pool: XapiPool) => Promise<T>,
  srUuid?: string,
): Promise<T> {
  const xapi = await connect(s);
  try {
    const pool = new XapiPool(xapi, s);
    if (srUuid !== undefined && !(await pool.srs()).some((sr) => sr.uuid === srUuid))
      throw new AppError(
        'SR_NOT_FOUND',
        `there is no SR ${srUuid} in this pool: 'xe sr-list' shows the SRs`,
      );
    return await fn(pool);
  } finally {
    await xapi.logout();
  }
}

/** Opens the SR's backup ring read-only for fn, and always detaches and logs out. */
export function withBackupRing<T>(
  s: Settings,
  srUuid: string | undefined,
  fn: (ring: RingPort) => Promise<T>,
): Promise<T> {
  return withPool(
    s,
    async (pool) => withRing(pool, disk, await backupVdiOf(pool, srUuid), true, fn),
    srUuid,
  );
}
