import { constants } from 'node:os';
import {
  AppError,
  backupVdiContent,
  errorCode,
  legacyAccess,
  legacyListing,
  listings,
  type RestoreResult,
  type VmOutcome,
} from '@xsmeta/core';
import {
  type ConsoleServices,
  type VmOutcome as ConsoleVmOutcome,
  type Frequency,
  runConsole,
} from '@xsmeta/tui';
import type { SrRecord } from '@xsmeta/xapi';
import { disk } from './adapters/disk.js';
import { readLegacyBackup, resolveLegacyVdi, withLegacyDisk } from './adapters/legacy-disk.js';
import { connect } from './adapters/xapi-connection.js';
import type { Settings } from './config.js';
import { type Io, withCode } from './output.js';
import { withBackupRing, withPool } from './root.js';
import { scheduleStatus, setFrequency } from './schedule.js';
import { backup, restore, restoreOn } from './services.js';

/**
 * The console's per-VM reporter over a run's outcomes: each VM is passed on as it finishes,
 * never once the run has settled (nor once Stop was asked: the console has stopped listening).
 */
function vmReporter(onVm: (ev: ConsoleVmOutcome) => void, signal: AbortSignal) {
  let settled = false;
  const message = (v: VmOutcome) => withCode(v.code, v.message ?? '');
  return {
    outcome(v: VmOutcome, at: { done: number; total: number }) {
      if (settled || signal.aborted) return;
      onVm({
        vmUuid: v.uuid,
        name: v.name,
        ok: v.ok,
        ...(v.ok ? {} : { error: message(v) }),
        done: at.done,
        total: at.total,
      });
    },
    /** The summary the console shows; nothing is reported after it. */
    summary(r: RestoreResult) {
      settled = true;
      return {
        restored: r.restored,
        errors: r.vms
          .filter((v) => !v.ok)
          .map((v) => ({ vmUuid: v.uuid, name: v.name, message: message(v) })),
      };
    },
    end() {
      settled = true;
    },
  };
}

/** Backup phases as the console words them. */
const PHASE: Record<string, string> = {
  capture: 'Exporting VM metadata',
  write: 'Writing the backup',
};

/**
 * Upstream's scripts (since XSA-459) write their ext3 to the same backup VDI: the console's
 * ring items say where to go instead of the CLI's flags.
 */
async function consoleWording<T>(srUuid: string | undefined, work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (errorCode(e) !== 'LEGACY_ON_BACKUP_VDI') throw e;
    throw new AppError(
      'LEGACY_ON_BACKUP_VDI',
      `This SR's Pool Metadata Backup disk holds backups of the old scripts (ext3), which xsmeta never overwrites: restore them with "Restore Virtual Machine Metadata from Legacy Backup", or turn them into new backups with 'xsmeta legacy convert --sr ${srUuid ?? 'SR_UUID'}'`,
      { cause: e },
    );
  }
}

/**
 * Whether a backup disk can be created on an SR: xsconsole's backup and restore dialogues
 * offer only SRs whose allowed_operations include `vdi_create` (capabilities 'vdi_create' in
 * plugins-base/XSFeatureDRBackup.py and XSFeatureDRRestore.py). An SR that already holds a
 * backup disk needs no new one and stays on offer.
 */
export function allowsNewDisk(sr: Partial<Pick<SrRecord, 'allowed_operations'>>): boolean {
  return Array.isArray(sr.allowed_operations) && sr.allowed_operations.includes('vdi_create');
}

/** Nothing may write to the terminal while the console draws. */
const silent: Io = { out: () => {}, err: () => {}, isTTY: false };

/** The console's services over the real pool, ring and event store (the same paths as the CLI). */
export function consoleServices(s: Settings): ConsoleServices {
  const xsconsoleRule =
    'This SR holds a backup disk of the new format: as XenServer requires, restore from it with "Restore Virtual Machine Metadata"';
  return {
    needsLogin: () => s.password === null,
    async login(username, password) {
      const xapi = await connect({ ...s, username, password });
      await xapi.logout();
      s.username = username;
      s.password = password;
    },
    listSrs: () =>
      withPool(s, async (pool) => {
        const info = await pool.pool();
        const records = await pool.xapi.getAllRecords<SrRecord>('SR');
        const out = [];
        for (const sr of records.values()) {
          if (sr.content_type === 'iso') continue;
          const uuid = sr.uuid;
          const has = (await pool.findVdi(pool.backupVdiUuid(uuid))) !== null;
          if (!has && !allowsNewDisk(sr)) continue;
          const size = Number(sr.physical_size ?? 0);
          out.push({
            uuid,
            name: String(sr.name_label),
            type: String(sr.type),
            sizeBytes: size,
            freeBytes: Math.max(0, size - Number(sr.physical_utilisation ?? 0)),
            hasBackupDisk: has,
            isDefault: uuid === info.defaultSrUuid,
          });
        }
        return out;
      }),
    async backup(srUuid, onProgress, signal) {
      signal.throwIfAborted();
      // Progress is passed on as the run makes it, and never once it settled or was stopped.
      let settled = false;
      const progress = (t: { phase: string; done: number; total: number; bytes: number }) => {
        if (settled || signal.aborted) return;
        onProgress({
          phase: PHASE[t.phase] ?? t.phase,
          done: t.done,
          total: t.total,
          bytes: t.bytes,
        });
      };
      const r = await consoleWording(
        srUuid,
        backup(
          s,
          { srUuid, create: true, reinit: false, findOnly: false, wait: false, progress, signal },
          silent,
        ),
      ).finally(() => {
        settled = true;
      });
      return {
        seq: r.seq ?? 0,
        date: r.date ?? '',
        vmCount: r.vmCount,
        templateCount: r.templateCount,
        storedBytes: r.storedBytes,
        rawBytes: r.rawBytes,
      };
    },
    listBackups: (srUuid) =>
      consoleWording(
        srUuid,
        withBackupRing(s, srUuid, async (ring) => {
          const report = await ring.verify();
          const bad = new Map(
            report.records.filter((r) => !r.ok).map((r) => [r.seq, r.error ?? 'damaged']),
          );
          const u = ring.usage();
          return {
            backups: listings(ring).map((l) => ({
              seq: l.seq,
              date: l.date,
              vmCount: l.vmCount,
              templateCount: l.templateCount,
              storedBytes: l.storedBytes,
              verified: !bad.has(l.seq),
              ...(bad.has(l.seq) ? { damaged: bad.get(l.seq)! } : {}),
            })),
            usage: {
              capacity: u.capacity,
              used: u.used,
              maxRecords: u.maxRecords,
              records: u.records.map((r) => ({ seq: r.seq, size: r.size })),
            },
          };
        }),
      ),
    async restore(req, onVm, signal) {
      signal.throwIfAborted();
      // One login, one attachment of the backup disk: the record is chosen by its seq and
      // read in the same pass; a seq no longer kept is refused (BACKUP_NOT_FOUND), never
      // replaced by the newest. VMs go one at a time, as upstream's scripts/xe-restore-metadata
      // imports them, so that Stop takes effect after the VM being imported.
      const report = vmReporter(onVm, signal);
      try {
        const r = await restore(
          s,
          {
            srUuid: req.srUuid,
            seq: req.seq,
            mode: req.mode,
            dryRun: req.dryRun,
            force: req.force === true,
            parallel: 1,
            signal,
            outcome: report.outcome,
          },
          silent,
        );
        return report.summary(r);
      } finally {
        report.end();
      }
    },
    legacyStatus: (srUuid) =>
      withPool(s, async (pool) => {
        // Choosing the console's legacy item is the opt-in; it cannot name a VDI (no -x).
        const access = legacyAccess({
          optedIn: true,
          srUuid,
          backupVdi: await backupVdiContent(pool, disk, srUuid),
        });
        return access.allowed ? { available: true } : { available: false, reason: xsconsoleRule };
      }),
    listLegacyBackups: (srUuid) =>
      withPool(s, async (pool) => {
        const { vdiUuid: vdi } = await resolveLegacyVdi(pool, srUuid, undefined);
        return withLegacyDisk(pool, vdi, async (disk) => (await legacyListing(disk)).backups);
      }),
    restoreLegacy: (req, onVm, signal) =>
      withPool(s, async (pool) => {
        signal.throwIfAborted();
        const { vdiUuid: vdi } = await resolveLegacyVdi(pool, req.srUuid, undefined);
        const { content, notes } = await readLegacyBackup(pool, vdi, req.date);
        const report = vmReporter(onVm, signal);
        try {
          const r = await restoreOn(
            pool,
            s,
            {
              srUuid: req.srUuid,
              mode: req.mode,
              dryRun: req.dryRun,
              force: false,
              parallel: 1,
              signal,
              outcome: report.outcome,
            },
            silent,
            undefined,
            { id: { srUuid: req.srUuid, vdiUuid: vdi }, content, legacy: true },
          );
          return { ...report.summary(r), notes };
        } finally {
          report.end();
        }
      }),
    async getSchedule() {
      const sum = await scheduleStatus(s);
      // The screen names the SR scheduled backups go to, not only its uuid.
      const srName = sum.srUuid
        ? await withPool(
            s,
            async (pool) => (await pool.srs()).find((sr) => sr.uuid === sum.srUuid)?.name ?? null,
          ).catch(() => null)
        : null;
      return {
        frequency: sum.frequency,
        srUuid: sum.srUuid,
        srName,
        nextRunAt: sum.nextRunAt,
        lastRun: sum.lastRun
          ? {
              at: sum.lastRun.at,
              outcome: sum.lastRun.outcome,
              ...(sum.lastRun.error ? { error: sum.lastRun.error } : {}),
            }
          : null,
      };
    },
    setSchedule: (f: Frequency) => setFrequency(s, f, silent),
  };
}

/** `xsmeta console`: the TUI over the real services; the terminal is always given back. */
export async function cmdConsole(s: Settings): Promise<number> {
  const end = await runConsole(consoleServices(s), { title: 'xsmeta' });
  return end.reason === 'signal' ? 128 + (constants.signals[end.signal] ?? 0) : 0;
}
