/**
 * The legacy (ext3) backup disk as a source: which VDI to read (`legacyAccess`, then a scan
 * of the SR), what one backup of it holds for a restore, and how a listing reports a backup
 * it cannot read. The same rules for `xe-restore-metadata -o`, `xsmeta legacy` and the
 * console's "from Legacy Backup" item; the disk itself is read behind the ports.
 */
import {
  type BackupVdiContent,
  chooseLegacyCandidate,
  damagesOneLegacyBackup,
  type LegacyRefusal,
  legacyAccess,
} from '../domain/legacy.js';
import { backupVdiContent } from './catalogue.js';
import { LEGACY_FORMAT_VERSION, type LegacyBackupContent } from './convert.js';
import { errorCode } from './errors.js';
import type { DiskPort, PoolPort } from './ports.js';
import { decodeSrMeta, type VmMapEntry } from './record.js';
import type { BackupContent } from './restore.js';

/** Why no legacy VDI (or no legacy backup) can be read; the caller words it as its errors. */
export interface LegacyRefused {
  readonly code: LegacyRefusal | 'VDI_NOT_ON_SR' | 'SR_NOT_FOUND' | 'NO_LEGACY_BACKUP';
  readonly reason: string;
}

export interface LegacySearchDeps {
  pool: PoolPort;
  disk: DiskPort;
  /**
   * Whether a VDI holds the old scripts' layout (attached read-only, never mounted); one that
   * cannot be attached or read is not.
   */
  looksLegacy(vdiUuid: string): Promise<boolean>;
}

export type LegacyHow = 'named' | 'backup-vdi' | 'scan';

const refused = (r: LegacyRefused) => r;

/**
 * The legacy VDIs that may be read on an SR, as `legacyAccess` decides: a named one (which
 * must be on the SR), the SR's own backup VDI when it holds an upstream ext3 image, or what a
 * scan of the SR's writable VDIs finds.
 */
export async function findLegacyVdis(
  deps: LegacySearchDeps,
  srUuid: string,
  namedVdi: string | undefined,
): Promise<{ how: LegacyHow; found: string[] } | LegacyRefused> {
  const { pool } = deps;
  if (namedVdi) {
    const v = await pool.findVdi(namedVdi);
    if (!v || v.srUuid !== srUuid)
      return refused({ code: 'VDI_NOT_ON_SR', reason: `VDI ${namedVdi} is not on SR ${srUuid}` });
  }
  const backupVdi: { uuid: string; holds: BackupVdiContent } | null = namedVdi
    ? null
    : await backupVdiContent(pool, deps.disk, srUuid);
  const access = legacyAccess({ optedIn: true, srUuid, namedVdi, backupVdi });
  if (!access.allowed) return refused({ code: access.code, reason: access.reason });
  if (access.vdiUuid) return { how: access.how, found: [access.vdiUuid] };
  const sr = (await pool.srs()).find((s) => s.uuid === srUuid);
  if (!sr) return refused({ code: 'SR_NOT_FOUND', reason: `no SR ${srUuid} in this pool` });
  const found: string[] = [];
  for (const vdi of sr.vdis) {
    if (vdi.readOnly) continue;
    if (await deps.looksLegacy(vdi.uuid)) found.push(vdi.uuid);
  }
  return { how: 'scan', found };
}

/** The one legacy VDI to read: the candidate, or a refusal when a scan found none or several. */
export async function chooseLegacyVdi(
  deps: LegacySearchDeps,
  srUuid: string,
  namedVdi: string | undefined,
): Promise<{ vdiUuid: string; how: LegacyHow } | LegacyRefused> {
  const c = await findLegacyVdis(deps, srUuid, namedVdi);
  if ('code' in c) return c;
  const chosen = chooseLegacyCandidate(srUuid, c.found);
  if ('code' in chosen) return refused(chosen);
  return { vdiUuid: chosen.vdiUuid, how: c.how };
}

/**
 * Converting makes a legacy disk's backups the SR's trusted ones (restored without -o): only
 * from the SR's own backup VDI (a guest cannot choose its uuid) or one named on purpose, never
 * from one a scan found. Null when the chosen VDI may be converted.
 */
export function convertRefusal(c: { vdiUuid: string; how: LegacyHow }): LegacyRefused | null {
  if (c.how !== 'scan') return null;
  return refused({
    code: 'LEGACY_UNAVAILABLE',
    reason: `converting makes VDI ${c.vdiUuid}'s backups trusted ones, and any guest can forge such a disk: name it with --vdi ${c.vdiUuid} if it is the old scripts' disk`,
  });
}

/** A legacy disk as the restore and the listing read it (legacy-compat's LegacyDisk). */
export interface LegacySource {
  dates: string[];
  backup(date: string): LegacyBackupContent;
}

/**
 * One legacy backup (by date, default the newest) as the restore's BackupContent: its exports
 * held for the restore, its map entries, its SR metadata.
 */
export async function legacyRestoreContent(
  src: LegacySource,
  date: string | undefined,
): Promise<BackupContent | LegacyRefused> {
  const chosen = date ?? src.dates[0];
  if (!chosen)
    return refused({ code: 'NO_LEGACY_BACKUP', reason: 'the legacy disk holds no backups' });
  if (!src.dates.includes(chosen))
    return refused({
      code: 'NO_LEGACY_BACKUP',
      reason: `no legacy backup dated ${chosen}; available: ${src.dates.join(', ')} (see -l)`,
    });
  const b = src.backup(chosen);
  const exports = new Map<string, Uint8Array>();
  const vmMap: VmMapEntry[] = [];
  for await (const { entry, data } of b.vms()) {
    exports.set(entry.uuid, data);
    vmMap.push(entry);
  }
  const srmetaXml = await b.srmetaXml();
  return {
    date: chosen,
    seq: null,
    formatVersion: LEGACY_FORMAT_VERSION,
    poolUuid: '',
    vmMap,
    vmExport: (u) => exports.get(u),
    srmeta: srmetaXml ? decodeSrMeta(new TextDecoder().decode(srmetaXml)) : [],
  };
}

/** What a listing reads of a legacy disk (legacy-compat's LegacyDisk has it). */
export interface LegacyListingSource {
  dates: string[];
  skipped: { path: string; reason: string }[];
  warnings: string[];
  backup(date: string): Promise<{ vms: readonly unknown[] }>;
}

export interface LegacyListing {
  backups: { date: string; vmCount: number; damaged?: string }[];
  skipped: { path: string; reason: string }[];
}

/**
 * Each backup's VM count, newest first. A backup whose folders cannot be read (see
 * damagesOneLegacyBackup) is listed as `damaged` and reported in `skipped`: the others stay
 * listed. Any other error ends the listing.
 */
export async function legacyListing(d: LegacyListingSource): Promise<LegacyListing> {
  const backups: LegacyListing['backups'] = [];
  const unreadable: LegacyListing['skipped'] = [];
  for (const date of d.dates) {
    try {
      backups.push({ date, vmCount: (await d.backup(date)).vms.length });
    } catch (e) {
      const code = errorCode(e);
      if (!damagesOneLegacyBackup(code)) throw e;
      const damaged = `${code}: ${(e as Error).message}`;
      backups.push({ date, vmCount: 0, damaged });
      unreadable.push({ path: `/metadata/${date}`, reason: damaged });
    }
  }
  return { backups, skipped: [...d.skipped, ...unreadable] };
}

/**
 * What reading a legacy backup left out or doubted, one line each: the disk's warnings (a
 * journal never replayed) and the entries of that backup that were skipped (a bad by-sr link
 * leaves its VM out of "only VMs on this SR"). Said before a restore or with a conversion.
 */
export function legacyNotes(
  d: Pick<LegacyListingSource, 'skipped' | 'warnings'>,
  date?: string,
): string[] {
  const mine = (path: string) =>
    date === undefined || path === `/metadata/${date}` || path.startsWith(`/metadata/${date}/`);
  return [
    ...d.warnings.map((w) => `warning: ${w}`),
    ...d.skipped.filter((k) => mine(k.path)).map((k) => `skipped ${k.path}: ${k.reason}`),
  ];
}
