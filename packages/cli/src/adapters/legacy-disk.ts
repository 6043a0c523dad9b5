import {
  type Attachment,
  type BackupContent,
  chooseLegacyVdi,
  findLegacyVdis,
  type LegacyBackupContent,
  type LegacyHow,
  type LegacyReaderPort,
  type LegacyRefused,
  type LegacySearchDeps,
  type LegacySource,
  legacyNotes,
  legacyRestoreContent,
  type VmMapEntry,
} from '@xsmeta/core';
import {
  type LegacyDisk,
  LegacyError,
  type LegacyLimits,
  openImage,
  openLegacyDisk,
} from '@xsmeta/legacy-compat';
import { readOva } from '@xsmeta/xapi';
import { UsageError } from '../config.js';
import { closeOnSignal } from '../process/signals.js';
import { disk } from './disk.js';
import type { XapiPool } from './xapi-pool.js';

/**
 * The old scripts' ext3 backup disks for core's legacy use cases (core/src/app/legacy-source.ts
 * chooses the VDI and builds what a restore reads): attached read-only, parsed by
 * @xsmeta/legacy-compat in user space, never mounted, always detached.
 */

/** A legacy source refused by core's rules (legacyAccess, the scan); exit status 1. */
class LegacyRefusedError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Core's refusal as the CLI's error: a wrong name or date is a usage error (exit 2). */
export function refusal(r: LegacyRefused): Error {
  return r.code === 'VDI_NOT_ON_SR' || r.code === 'SR_NOT_FOUND' || r.code === 'NO_LEGACY_BACKUP'
    ? new UsageError(r.reason)
    : new LegacyRefusedError(r.code, r.reason);
}

/** Core's search over this pool: each writable VDI of a scan is probed read-only. */
function search(pool: XapiPool): LegacySearchDeps {
  return { pool, disk, looksLegacy: (vdiUuid) => looksLikeLegacy(pool, vdiUuid) };
}

/** The legacy VDIs that may be read on an SR (core's findLegacyVdis). */
export async function legacyCandidates(
  pool: XapiPool,
  srUuid: string,
  namedVdi: string | undefined,
): Promise<{ how: LegacyHow; found: string[] }> {
  const c = await findLegacyVdis(search(pool), srUuid, namedVdi);
  if ('code' in c) throw refusal(c);
  return c;
}

/** The one legacy VDI to read (core's chooseLegacyVdi). */
export async function resolveLegacyVdi(
  pool: XapiPool,
  srUuid: string,
  namedVdi: string | undefined,
): Promise<{ vdiUuid: string; how: LegacyHow }> {
  const c = await chooseLegacyVdi(search(pool), srUuid, namedVdi);
  if ('code' in c) throw refusal(c);
  return c;
}

/** Whether a VDI holds the legacy layout's marker; one that cannot be attached is not. */
async function looksLikeLegacy(pool: XapiPool, vdiUuid: string): Promise<boolean> {
  let att: Attachment;
  try {
    att = await pool.attach(vdiUuid, { readOnly: true });
  } catch {
    return false; // in use by a running VM, say: not a disk the old scripts left detached
  }
  try {
    return await onLegacyDisk(att, async () => true, { timeoutMs: 10_000 });
  } catch (e) {
    if (e instanceof LegacyError) return false;
    throw e;
  } finally {
    await att.detach();
  }
}

/**
 * Reads legacy disks for `runConvert`, one export at a time; `onNotes` gets what the reading
 * left out or doubted (core's legacyNotes) once it is done.
 */
export function legacyReader(
  pool: XapiPool,
  onNotes: (notes: string[]) => void = () => {},
): LegacyReaderPort {
  return {
    read: (vdiUuid, fn) =>
      withLegacyDisk(pool, vdiUuid, async (d) => {
        try {
          return await fn(legacySource(d));
        } finally {
          onNotes(legacyNotes(d));
        }
      }),
  };
}

/** A parsed legacy disk as core's LegacySource: each backup's exports, SR metadata, pool DB. */
function legacySource(d: LegacyDisk): LegacySource {
  return {
    dates: d.dates,
    backup: (date): LegacyBackupContent => ({
      date,
      vms: () => legacyVms(d, date),
      srmetaXml: async () => (await d.backup(date)).srmeta(),
      poolDb: async () => {
        const db = d.poolDbFor(date);
        return db ? { poolUuid: db.poolUuid, data: await db.read() } : null;
      },
    }),
  };
}

/**
 * The most VMs and templates one legacy backup may hold for xsmeta to restore or convert it:
 * 5,000 (more than a pool of 64 hosts runs), or `XSMETA_LEGACY_MAX_VMS`. A disk any guest can
 * write must not make a restore read and import without end (100,000 exports took minutes and a
 * gigabyte): one with more is refused before anything is read or imported.
 */
export function legacyMaxVms(env: NodeJS.ProcessEnv = process.env): number {
  const n = Number(env.XSMETA_LEGACY_MAX_VMS);
  return Number.isInteger(n) && n > 0 ? n : 5000;
}

/** Each export of a legacy backup with its map entry (name and template flag from ova.xml). */
async function* legacyVms(
  disk: LegacyDisk,
  date: string,
): AsyncIterable<{ entry: VmMapEntry; data: Uint8Array }> {
  const b = await disk.backup(date);
  const max = legacyMaxVms();
  if (b.vms.length > max)
    throw new LegacyError(
      'LEGACY_LIMIT',
      `the legacy backup of ${date} holds ${b.vms.length} VM exports, more than the ${max} xsmeta reads from one backup: nothing was restored or converted (XSMETA_LEGACY_MAX_VMS raises the limit if the pool really had that many)`,
    );
  const srsOf = new Map<string, string[]>();
  for (const [sr, vms] of b.bySr)
    for (const vm of vms) {
      const srs = srsOf.get(vm);
      if (srs) srs.push(sr);
      else srsOf.set(vm, [sr]);
    }
  for await (const { uuid, data } of b.exports()) {
    const d = describeExport(data);
    yield {
      entry: { uuid, name: d.name, isTemplate: d.isTemplate, srUuids: srsOf.get(uuid) ?? [] },
      data,
    };
  }
}

/**
 * The VM's name and template flag, from the `ova.xml` of a `.vmmeta` export (read by
 * packages/xapi's readOva, as every export is); an export it cannot read has neither.
 */
function describeExport(tar: Uint8Array): { name: string; isTemplate: boolean } {
  try {
    const vm = readOva(tar, 64 * 1024 * 1024).objects.find(
      (o) => o.class === 'VM' && o.snapshot.is_a_snapshot !== true,
    )?.snapshot;
    return { name: String(vm?.name_label ?? ''), isTemplate: vm?.is_a_template === true };
  } catch {
    return { name: '', isTemplate: false };
  }
}

/** Attaches a legacy VDI read-only, parses it (never mounted), runs fn, always detaches. */
export async function withLegacyDisk<T>(
  pool: XapiPool,
  vdiUuid: string,
  fn: (disk: LegacyDisk) => Promise<T>,
): Promise<T> {
  const att = await pool.attach(vdiUuid, { readOnly: true });
  try {
    return await onLegacyDisk(att, fn);
  } finally {
    await att.detach();
  }
}

/** Parses an attached legacy disk (never mounted) and runs fn; the device is always closed. */
async function onLegacyDisk<T>(
  att: Attachment,
  fn: (disk: LegacyDisk) => Promise<T>,
  limits?: Partial<LegacyLimits>,
): Promise<T> {
  const dev = closeOnSignal(await openImage(att.devicePath));
  try {
    return await fn(await openLegacyDisk(dev, limits));
  } finally {
    await dev.close();
  }
}

/** One legacy backup read for a restore (core's legacyRestoreContent) and its notes. */
export function readLegacyBackup(
  pool: XapiPool,
  vdiUuid: string,
  date: string | undefined,
): Promise<{ content: BackupContent; notes: string[] }> {
  return withLegacyDisk(pool, vdiUuid, async (d) => {
    const content = await legacyRestoreContent(legacySource(d), date);
    if ('code' in content) throw refusal(content);
    return { content, notes: legacyNotes(d, content.date) };
  });
}
