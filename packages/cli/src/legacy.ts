import { type BackupContent, decodeSrMeta, type SrMeta, type VmMapEntry } from '@xsmeta/core';
import { type LegacyDisk, LegacyError, openImage, openLegacyDisk } from '@xsmeta/legacy-compat';
import { decodeValue } from '@xsmeta/xapi';
import { UsageError } from './config.js';
import type { XapiPool } from './runtime.js';

/**
 * Legacy backup VDIs (ext3, written by the old scripts) are read only when the administrator
 * asks (-o), never mounted, and only one candidate is ever trusted: several abort, naming them.
 */
export async function legacyCandidates(
  pool: XapiPool,
  srUuid: string,
  explicit: string | undefined,
): Promise<string[]> {
  if (explicit) return [explicit];
  const own = pool.backupVdiUuid(srUuid);
  if (await pool.findVdi(own)) {
    throw new UsageError(
      `SR ${srUuid} holds a backup VDI of the new format (${own}): restore from it, or name a legacy VDI explicitly with -o -x VDI_UUID`,
    );
  }
  const sr = (await pool.srs()).find((s) => s.uuid === srUuid);
  if (!sr) throw new UsageError(`no SR ${srUuid} in this pool`);
  const found: string[] = [];
  for (const vdi of sr.vdis) {
    const att = await pool.attach(vdi.uuid, { readOnly: true });
    try {
      const dev = await openImage(att.devicePath);
      try {
        await openLegacyDisk(dev, { timeoutMs: 10_000 });
        found.push(vdi.uuid);
      } catch (e) {
        if (!(e instanceof LegacyError)) throw e;
      } finally {
        await dev.close();
      }
    } finally {
      await att.detach();
    }
  }
  if (found.length === 0) throw new UsageError(`no legacy backup VDI on SR ${srUuid}`);
  if (found.length > 1) {
    throw new UsageError(
      `${found.length} VDIs on SR ${srUuid} look like legacy backups (${found.join(', ')}): any guest can forge one; name the right one with -x VDI_UUID`,
    );
  }
  return found;
}

/** The VM's name and template flag, from the `ova.xml` inside a `.vmmeta` export. */
function describeExport(tar: Uint8Array): { name: string; isTemplate: boolean } {
  const size = Number.parseInt(
    new TextDecoder().decode(tar.subarray(124, 136)).replace(/\0.*$/s, '').trim() || '0',
    8,
  );
  if (!Number.isFinite(size) || size <= 0 || 512 + size > tar.length)
    return { name: '', isTemplate: false };
  try {
    const ova = decodeValue(new TextDecoder().decode(tar.subarray(512, 512 + size)), {
      maxLength: 64 * 1024 * 1024,
    }) as {
      objects?: {
        class: string;
        snapshot: { name_label?: string; is_a_template?: boolean; is_a_snapshot?: boolean };
      }[];
    };
    const vm = ova.objects?.find((o) => o.class === 'VM' && !o.snapshot.is_a_snapshot)?.snapshot;
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
    const dev = await openImage(att.devicePath);
    try {
      return await fn(await openLegacyDisk(dev));
    } finally {
      await dev.close();
    }
  } finally {
    await att.detach();
  }
}

/** One legacy backup (by date, default the newest) as the restore's BackupContent. */
export async function legacyContent(
  disk: LegacyDisk,
  date: string | undefined,
): Promise<BackupContent & { date: string }> {
  const chosen = date ?? disk.dates[0];
  if (!chosen) throw new UsageError('the legacy disk holds no backups');
  if (!disk.dates.includes(chosen))
    throw new UsageError(
      `no legacy backup dated ${chosen}; available: ${disk.dates.join(', ')} (see -l)`,
    );
  const b = await disk.backup(chosen);
  const exports = new Map<string, Uint8Array>();
  const vmMap: VmMapEntry[] = [];
  for (const vm of b.vms) {
    const bytes = await vm.read();
    exports.set(vm.uuid, bytes);
    const d = describeExport(bytes);
    vmMap.push({
      uuid: vm.uuid,
      name: d.name,
      isTemplate: d.isTemplate,
      srUuids: [...b.bySr.entries()].filter(([, v]) => v.includes(vm.uuid)).map(([sr]) => sr),
    });
  }
  const srmetaBytes = await b.srmeta();
  const srmeta: SrMeta[] = srmetaBytes ? decodeSrMeta(new TextDecoder().decode(srmetaBytes)) : [];
  return {
    date: b.date,
    seq: null,
    formatVersion: 1,
    poolUuid: '',
    vmMap,
    vmExport: (u) => exports.get(u),
    srmeta,
  };
}
