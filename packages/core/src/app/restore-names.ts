/**
 * The restore's names pass: each SR of the backup's SRMETA that this pool has gets its name and
 * description back, and so do its VDIs; an SR that is not attached is reported and skipped.
 */
import { mapLimit } from './map-limit.js';
import type { PoolPort, SrInfo } from './ports.js';
import type { SrMeta } from './record.js';

/** What became of one SR's names. */
export interface SrNamesOutcome {
  uuid: string;
  restored: boolean;
  reason?: string;
}

/**
 * Restores the names of the SRs given (those of the restore's scope), reading the live SRs once.
 * `recorded` is told each outcome before it is returned (a failure to record a restored SR is
 * recorded as that SR's failure); a failure of one SR skips it, never stops the others. A dry run checks the SRs are present and changes nothing.
 */
export async function restoreSrNames(
  pool: PoolPort,
  srmeta: readonly SrMeta[],
  opts: { dryRun: boolean; parallel: number },
  recorded: (sr: SrMeta, out: SrNamesOutcome) => Promise<void>,
): Promise<SrNamesOutcome[]> {
  const present = new Map((await pool.srs()).map((s) => [s.uuid, s]));
  const srs: SrNamesOutcome[] = [];
  for (const sr of srmeta) {
    const live = present.get(sr.uuid);
    let out: SrNamesOutcome;
    if (!live) {
      out = { uuid: sr.uuid, restored: false, reason: 'the SR is not attached to this pool' };
      await recorded(sr, out);
    } else {
      try {
        if (!opts.dryRun) await restoreNames(pool, sr, live, opts.parallel);
        out = { uuid: sr.uuid, restored: true };
        await recorded(sr, out);
      } catch (e) {
        out = { uuid: sr.uuid, restored: false, reason: (e as Error).message };
        await recorded(sr, out);
      }
    }
    srs.push(out);
  }
  return srs;
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
