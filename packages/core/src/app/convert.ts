import { parseBackupDate } from '../domain/backup-date.js';
import { damagesOneLegacyBackup } from '../domain/legacy.js';
import { convertDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { BACKUP_FORMAT_VERSION, TOOL_VERSION } from '../version.js';
import { appendRecord, DEFAULT_KEEP, DEFAULT_VDI_SIZE, openOrFormat } from './backup.js';
import { findOrCreateBackupVdi } from './backup-ring.js';
import { onRing } from './catalogue.js';
import { AppError, errorCode } from './errors.js';
import { newRunId, runStream } from './handle.js';
import type {
  ArchivePart,
  ArchivePort,
  Attachment,
  DiskPort,
  PoolPort,
  Progress,
} from './ports.js';
import { decodeLabel, PART, type VmMapEntry } from './record.js';

/** The legacy format version (the `/.ctxs-metadata-backup` marker's content). */
export const LEGACY_FORMAT_VERSION = 1;

/** One legacy backup as read from its ext3 image (by @xsmeta/legacy-compat). */
export interface LegacyBackupContent {
  date: string;
  /**
   * Each VM's or template's export with its map entry, handed out one at a time (not all held;
   * a reader may read ahead a bounded batch).
   */
  vms(): AsyncIterable<{ entry: VmMapEntry; data: Uint8Array }>;
  /** SRMETA.xml as the old scripts wrote it, kept byte for byte. */
  srmetaXml(): Promise<Uint8Array | null>;
  /** The pool database dump of that run, when the disk still holds it (and can tell). */
  poolDb(): Promise<{ poolUuid: string; data: Uint8Array } | null>;
}

/**
 * What the conversion needs from a legacy disk: attached read-only, never mounted. An error
 * with a `LEGACY_*` code while one backup is read skips that backup (reported), not the run.
 */
export interface LegacyReaderPort {
  read<T>(
    vdiUuid: string,
    fn: (disk: { dates: string[]; backup(date: string): LegacyBackupContent }) => Promise<T>,
  ): Promise<T>;
}

export interface ConvertDeps {
  pool: PoolPort;
  disk: DiskPort;
  archive: ArchivePort;
  legacy: LegacyReaderPort;
  clock: Clock;
  events: EventStore | null;
  progress?: Progress;
}

export interface ConvertOptions {
  srUuid: string;
  /** The legacy VDI to read (chosen by `legacyAccess` / a scan). */
  legacyVdiUuid: string;
  /** Dates to convert; default every backup on the legacy disk. */
  dates?: string[];
  /** Size of the backup VDI when it must be created. */
  vdiSize?: number;
}

export interface ConvertResult {
  srUuid: string;
  vdiUuid: string;
  legacyVdiUuid: string;
  converted: { date: string; seq: number; vmCount: number; templateCount: number }[];
  skipped: { date: string; reason: string }[];
  /** When the legacy disk was the backup VDI itself: the verified copy kept of it. */
  keptCopyVdiUuid: string | null;
}

/** The name given to the copy of a legacy disk kept before its VDI becomes the ring. */
export const KEPT_LEGACY_NAME = 'Pool Metadata Backup (legacy ext3, kept by xsmeta)';

/**
 * Converts legacy backups into records of the SR's ring, oldest first, each keeping its
 * original date, marked `converted` (format 1 -> current). Never evicts a backup: a date
 * already in the ring, or one that would push another record out, is skipped and reported.
 * When the legacy image is on the backup VDI itself (upstream's scripts after XSA-459 wrote it
 * there), a verified copy of it is kept as a new VDI before that VDI is formatted as a ring.
 * Events (stream `legacy-<runId>`): LegacyConvertStarted, LegacyBackupConverted per date,
 * LegacyConvertFinished | LegacyConvertFailed.
 */
export async function runConvert(deps: ConvertDeps, opts: ConvertOptions): Promise<ConvertResult> {
  const { pool, disk, archive, clock } = deps;
  const runId = newRunId(clock.now());
  const rec = runStream(deps.events, `legacy-${runId}`, convertDecider, { runId });
  const srUuid = opts.srUuid;
  const vdiUuid = pool.backupVdiUuid(srUuid);
  let keptCopyVdiUuid: string | null = null;
  try {
    // 1. Read and archive the chosen backups while the legacy disk is attached read-only,
    // newest first, while they fit the ring's count and the disk's size: the memory held is
    // bounded by the size of the backup disk, whatever the legacy image claims.
    const budget = await ringBudget(pool, vdiUuid, opts);
    const skipped: ConvertResult['skipped'] = [];
    const sameVdi = opts.legacyVdiUuid === vdiUuid;
    if (sameVdi && opts.dates)
      throw new AppError(
        'CONVERT_REFUSED',
        'the legacy backups are on the backup VDI itself, which becomes the ring: convert them all (without a date); a verified copy of the disk is kept',
      );
    const now = clock.now().getTime();
    const records = await deps.legacy.read(opts.legacyVdiUuid, async (src) => {
      const known = new Set(src.dates);
      const all = [...new Set(opts.dates ?? src.dates)].sort().reverse();
      for (const d of all)
        if (!known.has(d))
          throw new AppError(
            'BACKUP_NOT_FOUND',
            `no legacy backup dated ${d}; available: ${src.dates.slice(0, 30).join(', ') || 'none'}`,
          );
      // Which dates are taken and why the others are left: the decider's rule, recorded.
      const [started] = await rec.exec({
        type: 'StartConvert',
        data: {
          runId,
          srUuid,
          vdiUuid,
          legacyVdiUuid: opts.legacyVdiUuid,
          toolVersion: TOOL_VERSION,
          formatVersion: BACKUP_FORMAT_VERSION,
          candidates: all,
          now: new Date(now).toISOString(),
          keep: DEFAULT_KEEP,
        },
      });
      const decided = started?.type === 'LegacyConvertStarted' ? started.data : null;
      const wanted = [...(decided?.dates ?? [])];
      for (const s of decided?.skipped ?? []) skipped.push(s);
      const out: Converted[] = [];
      let used = 0;
      for (const [i, date] of wanted.entries()) {
        const counts = { vmCount: 0, templateCount: 0, poolUuid: '' };
        let archived: Converted['archived'];
        try {
          archived = await archive.write(legacyParts(src.backup(date), counts), {
            maxStoredBytes: budget - used,
          });
        } catch (e) {
          const code = errorCode(e) ?? '';
          if (code === 'ARCHIVE_TOO_LARGE')
            skipped.push({ date, reason: 'no room for it on the backup disk with the newer ones' });
          // One backup beyond the record limits restore applies, or one the legacy reader
          // refuses (damaged, hostile): reported, the rest go on. The disk's own limits
          // (LEGACY_LIMIT, the time budget) are the whole run's problem: it stops before any write.
          else if (code === 'ARCHIVE_LIMIT' || damagesOneLegacyBackup(code))
            skipped.push({ date, reason: `${code}: ${(e as Error).message}` });
          else throw e;
          continue;
        }
        used += archived.bytes.length;
        out.push({ date, archived, ...counts });
        deps.progress?.({
          phase: 'read',
          done: i + 1,
          total: wanted.length,
          bytes: archived.rawBytes,
          item: date,
        });
      }
      return out;
    });

    const converted: ConvertResult['converted'] = [];
    const finish = async (): Promise<ConvertResult> => {
      skipped.sort((a, b) => (a.date < b.date ? -1 : 1));
      await rec.exec({ type: 'FinishConvert', data: { runId, skipped, keptCopyVdiUuid } });
      const legacyVdiUuid = opts.legacyVdiUuid;
      return { srUuid, vdiUuid, legacyVdiUuid, converted, skipped, keptCopyVdiUuid };
    };

    // 2. Where the ring goes: the SR's backup VDI, made (or kept from the legacy disk) first.
    // Nothing to convert: nothing is copied, created or formatted.
    let reinit = false;
    if (records.length === 0) return await finish();
    if (sameVdi) {
      keptCopyVdiUuid = (await pool.copyVdi(vdiUuid, KEPT_LEGACY_NAME)).uuid;
      reinit = true;
    } else {
      const target = await findOrCreateBackupVdi(pool, srUuid, {
        create: true,
        ...(opts.vdiSize === undefined ? {} : { vdiSize: opts.vdiSize }),
      });
      reinit = target.created;
    }

    // 3. Append, never evicting: dates already there are skipped; when the ring has room for
    // fewer than are left, the newest are kept; they go in oldest first.
    const open = (att: Attachment) =>
      openOrFormat(disk, att, { vdiUuid, srUuid }, { reinit, keep: DEFAULT_KEEP });
    await onRing(pool, vdiUuid, false, open, async (ring) => {
      const present = new Set(ring.list().map((x) => decodeLabel(x.label)?.date));
      const u = ring.usage();
      let room = Math.max(0, u.maxRecords - ring.list().length);
      let free = u.free;
      const chosen: Converted[] = [];
      for (const r of records) {
        if (present.has(r.date))
          skipped.push({ date: r.date, reason: 'a backup of that date is already in the ring' });
        else if (room === 0)
          skipped.push({
            date: r.date,
            reason: `the ring holds its maximum of ${u.maxRecords} backups: converting more would push out newer ones`,
          });
        else if (estimate(r) > free)
          skipped.push({
            date: r.date,
            reason: 'no room left on the backup disk without evicting a backup',
          });
        else {
          chosen.push(r);
          room--;
          free -= estimate(r);
        }
      }
      for (const r of chosen.reverse()) {
        const createdAt = parseBackupDate(r.date)?.getTime() ?? 0;
        let w: { seq: number; storedBytes: number };
        const list = ring.list();
        try {
          w = await appendRecord(
            archive,
            ring,
            r.archived,
            {
              formatVersion: BACKUP_FORMAT_VERSION,
              tool: 'xsmeta',
              toolVersion: TOOL_VERSION,
              poolUuid: r.poolUuid,
              srUuid,
              vdiUuid,
              date: r.date,
              createdAt,
              vmCount: r.vmCount,
              templateCount: r.templateCount,
              converted: {
                from: 'legacy',
                formatVersion: LEGACY_FORMAT_VERSION,
                vdiUuid: opts.legacyVdiUuid,
              },
            },
            // Keep every record already there: nothing is evicted for a conversion.
            list.length + 1,
          );
        } catch (e) {
          if (errorCode(e) !== 'BACKUP_TOO_LARGE') throw e;
          skipped.push({
            date: r.date,
            reason: 'no room left on the backup disk without evicting a backup',
          });
          continue;
        }
        await rec.exec({
          type: 'RecordConverted',
          data: {
            runId,
            date: r.date,
            seq: w.seq,
            vmCount: r.vmCount,
            templateCount: r.templateCount,
            rawBytes: r.archived.rawBytes,
            storedBytes: w.storedBytes,
            fromFormatVersion: LEGACY_FORMAT_VERSION,
            formatVersion: BACKUP_FORMAT_VERSION,
          },
        });
        converted.push({
          date: r.date,
          seq: w.seq,
          vmCount: r.vmCount,
          templateCount: r.templateCount,
        });
        deps.progress?.({
          phase: 'write',
          done: converted.length,
          total: chosen.length,
          bytes: w.storedBytes,
          item: r.date,
        });
      }
    });
    return await finish();
  } catch (caught) {
    // Once the copy is kept the backup VDI may already be a ring: say where the legacy disk is.
    const e = keptCopyVdiUuid
      ? new AppError(
          'CONVERT_INTERRUPTED',
          `${(caught as Error).message}; the legacy disk is kept as VDI ${keptCopyVdiUuid}: run again with --vdi ${keptCopyVdiUuid}`,
          { cause: caught },
        )
      : caught;
    if (rec.state().status === 'running') {
      await rec
        .exec({
          type: 'FailConvert',
          data: { runId, code: errorCode(e) ?? 'ERROR', reason: (e as Error).message },
        })
        .catch(() => {});
    }
    throw e;
  }
}

interface Converted {
  date: string;
  archived: Awaited<ReturnType<ArchivePort['write']>>;
  vmCount: number;
  templateCount: number;
  /** From the pool database dump's name; empty when the backup has none. */
  poolUuid: string;
}

/**
 * A record's room on the ring, over-estimated: the parts, the manifest (about 200 bytes a
 * part before compression), the record header and block alignment.
 */
function estimate(r: Converted): number {
  return r.archived.bytes.length + 256 * r.archived.parts.length + 8192;
}

/** How many bytes the ring can hold at most: the backup VDI's size, as it is or will be. */
async function ringBudget(pool: PoolPort, vdiUuid: string, opts: ConvertOptions): Promise<number> {
  const target = await pool.findVdi(vdiUuid);
  if (target) return target.virtualSize;
  return opts.vdiSize ?? DEFAULT_VDI_SIZE;
}

/**
 * The parts of a converted record, in a backup's layout (see PART), read one export at a
 * time; `counts` is filled as the VMs go by.
 */
async function* legacyParts(
  b: LegacyBackupContent,
  counts: { vmCount: number; templateCount: number; poolUuid: string },
): AsyncIterable<ArchivePart> {
  const db = await b.poolDb();
  if (db) {
    counts.poolUuid = db.poolUuid;
    yield { name: PART.poolDb, data: db.data };
  }
  const map: VmMapEntry[] = [];
  for await (const { entry, data } of b.vms()) {
    map.push(entry);
    if (entry.isTemplate) counts.templateCount++;
    else counts.vmCount++;
    yield { name: PART.vm(entry.uuid, entry.isTemplate), data };
  }
  const srmeta = await b.srmetaXml();
  if (srmeta) yield { name: PART.srmeta, data: srmeta };
  yield { name: PART.vmMap, data: new TextEncoder().encode(JSON.stringify(map)) };
}
