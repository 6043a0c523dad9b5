import {
  type Attachment,
  type BackupContent,
  backupVdiContent,
  chooseLegacyCandidate,
  decodeSrMeta,
  LEGACY_FORMAT_VERSION,
  type LegacyReaderPort,
  type LegacyRefusal,
  legacyAccess,
  resolveSr,
  runConvert,
  type VmMapEntry,
} from '@xsmeta/core';
import {
  type LegacyDisk,
  LegacyError,
  type LegacyLimits,
  openImage,
  openLegacyDisk,
} from '@xsmeta/legacy-compat';
import { decodeValue } from '@xsmeta/xapi';
import { archive } from './adapters/archive.js';
import { systemClock } from './adapters/clock.js';
import { disk as ringDisk } from './adapters/disk.js';
import { historyLostLine, withEvents } from './adapters/event-log.js';
import type { XapiPool } from './adapters/xapi-pool.js';
import { type Settings, UsageError } from './config.js';
import type { Io } from './output.js';
import { lockSr } from './process/lock.js';
import { progressBar } from './process/progress.js';
import { closeOnSignal } from './process/signals.js';
import { withPool } from './root.js';

/** A legacy source refused by the rule (core's legacyAccess) or by the scan; exit status 1. */
export class LegacyRefused extends Error {
  constructor(
    readonly code: LegacyRefusal,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The legacy VDIs that may be read on an SR, as core's `legacyAccess` decides: a named one
 * (-x, which must be on the SR), the SR's own backup VDI when it holds an upstream ext3 image,
 * or what a scan of the SR's writable VDIs finds (each attached read-only, never mounted).
 */
export async function legacyCandidates(
  pool: XapiPool,
  srUuid: string,
  namedVdi: string | undefined,
): Promise<{ how: 'named' | 'backup-vdi' | 'scan'; found: string[] }> {
  if (namedVdi) {
    const v = await pool.findVdi(namedVdi);
    if (!v || v.srUuid !== srUuid) throw new UsageError(`VDI ${namedVdi} is not on SR ${srUuid}`);
  }
  const access = legacyAccess({
    optedIn: true,
    srUuid,
    namedVdi,
    backupVdi: namedVdi ? null : await backupVdiContent(pool, ringDisk, srUuid),
  });
  if (!access.allowed) throw new LegacyRefused(access.code, access.reason);
  if (access.vdiUuid) return { how: access.how, found: [access.vdiUuid] };
  const sr = (await pool.srs()).find((s) => s.uuid === srUuid);
  if (!sr) throw new UsageError(`no SR ${srUuid} in this pool`);
  const found: string[] = [];
  for (const vdi of sr.vdis) {
    if (vdi.readOnly) continue;
    if (await looksLikeLegacy(pool, vdi.uuid)) found.push(vdi.uuid);
  }
  return { how: 'scan', found };
}

/** The one legacy VDI to read: the candidate, or a refusal when a scan found none or several. */
export async function resolveLegacyVdi(
  pool: XapiPool,
  srUuid: string,
  namedVdi: string | undefined,
): Promise<{ vdiUuid: string; how: 'named' | 'backup-vdi' | 'scan' }> {
  const c = await legacyCandidates(pool, srUuid, namedVdi);
  const chosen = chooseLegacyCandidate(srUuid, c.found);
  if ('code' in chosen) throw new LegacyRefused(chosen.code, chosen.reason);
  return { vdiUuid: chosen.vdiUuid, how: c.how };
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
 * left out or doubted (see legacyNotes) once it is done.
 */
export function legacyReader(
  pool: XapiPool,
  onNotes: (notes: string[]) => void = () => {},
): LegacyReaderPort {
  return {
    read: (vdiUuid, fn) =>
      withLegacyDisk(pool, vdiUuid, async (d) => {
        try {
          return await fn({
            dates: d.dates,
            backup: (date) => ({
              date,
              vms: () => legacyVms(d, date),
              srmetaXml: async () => (await d.backup(date)).srmeta(),
              poolDb: () => poolDbOf(d, date),
            }),
          });
        } finally {
          onNotes(legacyNotes(d));
        }
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
      entry: {
        uuid,
        name: d.name,
        isTemplate: d.isTemplate,
        srUuids: srsOf.get(uuid) ?? [],
      },
      data,
    };
  }
}

/** The run's pool database dump, when legacy-compat can pair it with the backup. */
async function poolDbOf(
  disk: LegacyDisk,
  date: string,
): Promise<{ poolUuid: string; data: Uint8Array } | null> {
  const db = disk.poolDbFor(date);
  return db ? { poolUuid: db.poolUuid, data: await db.read() } : null;
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

/** One legacy backup read for a restore: its content, and what reading it left out or doubted. */
export function readLegacyBackup(
  pool: XapiPool,
  vdiUuid: string,
  date: string | undefined,
): Promise<{ content: BackupContent; notes: string[] }> {
  return withLegacyDisk(pool, vdiUuid, async (disk) => {
    const content = await legacyContent(disk, date);
    return { content, notes: legacyNotes(disk, content.date) };
  });
}

/** One legacy backup (by date, default the newest) as the restore's BackupContent. */
async function legacyContent(disk: LegacyDisk, date: string | undefined): Promise<BackupContent> {
  const chosen = date ?? disk.dates[0];
  if (!chosen) throw new UsageError('the legacy disk holds no backups');
  if (!disk.dates.includes(chosen))
    throw new UsageError(
      `no legacy backup dated ${chosen}; available: ${disk.dates.join(', ')} (see -l)`,
    );
  const exports = new Map<string, Uint8Array>();
  const vmMap: VmMapEntry[] = [];
  for await (const { entry, data } of legacyVms(disk, chosen)) {
    exports.set(entry.uuid, data);
    vmMap.push(entry);
  }
  const srmetaXml = await (await disk.backup(chosen)).srmeta();
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

/**
 * Each backup's VM count, newest first. A backup whose folders cannot be read is reported in
 * `skipped` (and listed with `damaged` for the console): the others stay listed. Running out of
 * time or budget still ends the listing.
 */
export async function legacyListing(d: LegacyDisk): Promise<{
  backups: { date: string; vmCount: number; damaged?: string }[];
  skipped: { path: string; reason: string }[];
}> {
  const backups: { date: string; vmCount: number; damaged?: string }[] = [];
  const unreadable: { path: string; reason: string }[] = [];
  for (const date of d.dates) {
    try {
      backups.push({ date, vmCount: (await d.backup(date)).vms.length });
    } catch (e) {
      if (!(e instanceof LegacyError) || e.code === 'LEGACY_TIMEOUT' || e.code === 'LEGACY_LIMIT')
        throw e;
      const damaged = `${e.code}: ${e.message}`;
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
function legacyNotes(disk: LegacyDisk, date?: string): string[] {
  const mine = (path: string) =>
    date === undefined || path === `/metadata/${date}` || path.startsWith(`/metadata/${date}/`);
  return [
    ...disk.warnings.map((w) => `warning: ${w}`),
    ...disk.skipped.filter((k) => mine(k.path)).map((k) => `skipped ${k.path}: ${k.reason}`),
  ];
}

/**
 * `xsmeta legacy list|convert`: running this command is the opt-in to reading legacy disks.
 * The disk is chosen by core's `legacyAccess` (`--vdi` names one; see resolveLegacyVdi).
 */
export async function cmdLegacy(
  sub: 'list' | 'convert',
  o: {
    sr?: string | undefined;
    vdi?: string | undefined;
    date?: string | undefined;
    json?: boolean;
  },
  s: Settings,
  io: Io,
): Promise<number> {
  const named = o.vdi;
  const json = o.json === true;
  return withPool(
    s,
    async (pool) => {
      const srUuid = await resolveSr(pool, o.sr);
      const { vdiUuid, how } = await resolveLegacyVdi(pool, srUuid, named);
      if (sub === 'list') {
        const report = await withLegacyDisk(pool, vdiUuid, async (d) => ({
          srUuid,
          vdiUuid,
          ...(await legacyListing(d)),
          warnings: d.warnings,
        }));
        if (json) io.out(JSON.stringify(report));
        else {
          io.err(`Legacy backup VDI ${vdiUuid} on SR ${srUuid} (read, never mounted):`);
          for (const b of report.backups)
            io.out(
              b.damaged
                ? `${b.date}  DAMAGED (${b.damaged})`
                : `${b.date}  ${b.vmCount} VM(s) and template(s)`,
            );
          for (const k of report.skipped) io.err(`skipped ${k.path}: ${k.reason}`);
          for (const w of report.warnings) io.err(`warning: ${w}`);
        }
        return 0;
      }
      // Converting makes a legacy disk's content the SR's trusted backups (restored without -o):
      // only from the SR's own backup VDI (a guest cannot choose its uuid) or one named on purpose.
      if (how === 'scan')
        throw new LegacyRefused(
          'LEGACY_UNAVAILABLE',
          `converting makes VDI ${vdiUuid}'s backups trusted ones, and any guest can forge such a disk: name it with --vdi ${vdiUuid} if it is the old scripts' disk`,
        );
      const date = o.date;
      let notes: string[] = [];
      const unlock = await lockSr(s.stateDir, srUuid, false);
      const bar = progressBar(io, { enabled: io.isTTY && !json });
      try {
        // What a killed conversion of this SR left (under this lock, so no live run's).
        for (const gone of await pool.removeDeadCopies(srUuid))
          io.err(`Removed VDI ${gone}, an unfinished copy a conversion that died left behind.`);
        const r = await withEvents(
          s.stateDir,
          (events) =>
            runConvert(
              {
                pool,
                disk: ringDisk,
                archive,
                legacy: legacyReader(pool, (n) => {
                  notes = n;
                }),
                clock: systemClock,
                events,
                progress: bar.tick,
              },
              { srUuid, legacyVdiUuid: vdiUuid, ...(date ? { dates: [date] } : {}) },
            ),
          (e) => io.err(historyLostLine('conversion', e)),
        );
        bar.end();
        if (json) io.out(JSON.stringify({ ...r, notes }));
        else {
          for (const n of notes) io.err(n);
          if (r.keptCopyVdiUuid)
            io.err(
              `The legacy disk was the backup VDI itself: a verified copy of it is kept as VDI ${r.keptCopyVdiUuid}.`,
            );
          for (const c of r.converted)
            io.out(
              `Converted ${c.date}: ${c.vmCount} VM(s), ${c.templateCount} template(s) (seq ${c.seq})`,
            );
          for (const k of r.skipped) io.out(`Skipped ${k.date}: ${k.reason}`);
          io.out(
            `Converted ${r.converted.length} legacy backup(s) into the ring on VDI ${r.vdiUuid}, skipped ${r.skipped.length}`,
          );
        }
        return 0;
      } finally {
        bar.end();
        unlock();
      }
    },
    o.sr,
  );
}
