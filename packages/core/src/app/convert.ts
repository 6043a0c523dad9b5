import { convertDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { BACKUP_FORMAT_VERSION, TOOL_VERSION } from '../version.js';
import { appendRecord, DEFAULT_KEEP, DEFAULT_VDI_SIZE, openOrFormat } from './backup.js';
import { AppError, errorCode } from './errors.js';
import type { ArchivePart, ArchivePort, DiskPort, PoolPort, Progress } from './ports.js';
import { decodeLabel, PART, parseBackupDate, type VmMapEntry } from './record.js';
import { newRunId, StreamRecorder } from './recorder.js';

/** The legacy format version (the `/.ctxs-metadata-backup` marker's content). */
export const LEGACY_FORMAT_VERSION = 1;

/** One legacy backup as read from its ext3 image (by @xsmeta/legacy-compat). */
export interface LegacyBackupContent {
  date: string;
  vmMap: VmMapEntry[];
  vmExport(uuid: string): Uint8Array | undefined;
  /** SRMETA.xml as the old scripts wrote it, kept byte for byte. */
  srmetaXml: Uint8Array | null;
  /** The pool database dump of that run, when the disk still holds it. */
  poolDb: Uint8Array | null;
}

/** What the conversion needs from a legacy disk: attached read-only, never mounted. */
export interface LegacyReaderPort {
  read<T>(
    vdiUuid: string,
    fn: (disk: {
      dates: string[];
      content(date: string): Promise<LegacyBackupContent>;
    }) => Promise<T>,
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
  const rec = new StreamRecorder(deps.events, `legacy-${runId}`, convertDecider);
  const srUuid = opts.srUuid;
  const vdiUuid = pool.backupVdiUuid(srUuid);
  try {
    // 1. Read and archive every chosen backup while the legacy disk is attached read-only.
    const records = await deps.legacy.read(opts.legacyVdiUuid, async (src) => {
      const wanted = opts.dates ?? src.dates;
      for (const d of wanted)
        if (!src.dates.includes(d))
          throw new AppError(
            'BACKUP_NOT_FOUND',
            `no legacy backup dated ${d}; available: ${src.dates.join(', ') || 'none'}`,
          );
      await rec.exec({
        type: 'StartConvert',
        data: {
          runId,
          srUuid,
          vdiUuid,
          legacyVdiUuid: opts.legacyVdiUuid,
          dates: [...wanted],
          toolVersion: TOOL_VERSION,
          formatVersion: BACKUP_FORMAT_VERSION,
        },
      });
      const out = [];
      // Oldest first, so that sequence numbers grow with the dates.
      const order = [...new Set(wanted)].sort();
      for (const [i, date] of order.entries()) {
        const content = await src.content(date);
        const archived = await archive.write(legacyParts(content), {});
        const vmCount = content.vmMap.filter((v) => !v.isTemplate).length;
        out.push({ date, archived, vmCount, templateCount: content.vmMap.length - vmCount });
        deps.progress?.({
          phase: 'read',
          done: i + 1,
          total: order.length,
          bytes: archived.rawBytes,
          item: date,
        });
      }
      return out;
    });

    // 2. Where the ring goes: the SR's backup VDI, made (or kept from the legacy disk) first.
    let keptCopyVdiUuid: string | null = null;
    let reinit = false;
    if (opts.legacyVdiUuid === vdiUuid) {
      keptCopyVdiUuid = (await pool.copyVdi(vdiUuid, KEPT_LEGACY_NAME)).uuid;
      reinit = true;
    } else if (!(await pool.findVdi(vdiUuid))) {
      await pool.createBackupVdi(srUuid, opts.vdiSize ?? DEFAULT_VDI_SIZE);
      reinit = true;
    }

    // 3. Append, never evicting: a date already there or no room left is skipped, reported.
    const converted: ConvertResult['converted'] = [];
    const skipped: ConvertResult['skipped'] = [];
    const att = await pool.attach(vdiUuid, { readOnly: false });
    try {
      const ring = await openOrFormat(
        disk,
        att,
        { vdiUuid, srUuid },
        { reinit, keep: DEFAULT_KEEP },
      );
      try {
        for (const r of records) {
          const list = ring.list();
          const maxRecords = ring.usage().maxRecords;
          if (list.some((x) => decodeLabel(x.label)?.date === r.date)) {
            skipped.push({ date: r.date, reason: 'a backup of that date is already in the ring' });
            continue;
          }
          if (list.length >= maxRecords) {
            skipped.push({
              date: r.date,
              reason: `the ring holds its maximum of ${maxRecords} backups: converting more would push out newer ones`,
            });
            continue;
          }
          const createdAt = parseBackupDate(r.date)?.getTime() ?? 0;
          let w: { seq: number; storedBytes: number };
          try {
            w = await appendRecord(
              archive,
              ring,
              r.archived,
              {
                formatVersion: BACKUP_FORMAT_VERSION,
                tool: 'xsmeta',
                toolVersion: TOOL_VERSION,
                poolUuid: '',
                srUuid,
                vdiUuid,
                date: r.date,
                createdAt,
                vmCount: r.vmCount,
                templateCount: r.templateCount,
                converted: { from: 'legacy', formatVersion: LEGACY_FORMAT_VERSION },
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
            done: converted.length + skipped.length,
            total: records.length,
            bytes: w.storedBytes,
            item: r.date,
          });
        }
      } finally {
        await ring.close();
      }
    } finally {
      await att.detach();
    }
    await rec.exec({ type: 'FinishConvert', data: { runId, skipped, keptCopyVdiUuid } });
    return {
      srUuid,
      vdiUuid,
      legacyVdiUuid: opts.legacyVdiUuid,
      converted,
      skipped,
      keptCopyVdiUuid,
    };
  } catch (e) {
    if (rec.current.status === 'running') {
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

/** The parts of a converted record: the same layout as a backup's (see PART). */
async function* legacyParts(c: LegacyBackupContent): AsyncIterable<ArchivePart> {
  if (c.poolDb) yield { name: PART.poolDb, data: c.poolDb };
  for (const v of c.vmMap) {
    const data = c.vmExport(v.uuid);
    if (data) yield { name: PART.vm(v.uuid, v.isTemplate), data };
  }
  if (c.srmetaXml) yield { name: PART.srmeta, data: c.srmetaXml };
  yield { name: PART.vmMap, data: new TextEncoder().encode(JSON.stringify(c.vmMap)) };
}
