import { backupDecider } from '../domain/runs.js';
import type { Clock, EventStore } from '../store/types.js';
import { BACKUP_FORMAT_VERSION, TOOL_VERSION } from '../version.js';
import {
  appendRecord,
  backupsOn,
  DEFAULT_KEEP,
  findOrCreateBackupVdi,
  openOrFormat,
} from './backup-ring.js';
import { resolveSr } from './catalogue.js';
import { errorCode } from './errors.js';
import { newRunId, runStream } from './handle.js';
import { DEFAULT_PARALLEL } from './map-limit.js';
import type {
  ArchivePart,
  ArchivePort,
  Attachment,
  DiskPort,
  ExportAll,
  PoolPort,
  Progress,
} from './ports.js';
import {
  decodeLabel,
  encodeSrMeta,
  PART,
  type SkippedVm,
  uniqueDate,
  type VmMapEntry,
} from './record.js';

// The ring side lives in backup-ring.ts; convert.ts and the package index take these from here.
export { appendRecord, DEFAULT_KEEP, DEFAULT_VDI_SIZE, openOrFormat } from './backup-ring.js';

export interface BackupDeps {
  pool: PoolPort;
  disk: DiskPort;
  archive: ArchivePort;
  clock: Clock;
  events: EventStore | null;
  progress?: Progress;
  /** Aborts the capture (Ctrl-C); clean-up still runs. */
  signal?: AbortSignal;
  /** Waits between the retries of a refused export (tests pass one that needs no real time). */
  sleep?: (ms: number) => Promise<void>;
  /** One line per problem the ring found with its root (and recovered) when opened. */
  onNote?: (line: string) => void;
  /**
   * Told once the capture asks for the one-request export: what it holds in memory is then
   * bounded by `exportAllMaxVms` (a command uses it to let V8 keep a larger young generation).
   */
  onOneRequestExport?: () => void;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface BackupOptions {
  srUuid?: string;
  create?: boolean;
  keep?: number;
  vdiSize?: number;
  /** Re-initialise the ring (destroys the backups it holds). */
  reinit?: boolean;
  /** Only find the backup VDI, then stop (upstream's -n). */
  findOnly?: boolean;
  trigger?: 'manual' | 'schedule';
  parallel?: number;
  /** Use the pool's one-request export of every VM when it has one (default true). */
  exportAll?: boolean;
  /**
   * Above this many VMs the one-request export is not used: xapi takes no subset of VMs
   * (ocaml/xapi/export.ml), and the index its split keeps grows with the pool; per-VM
   * exports stream into the archive in bounded memory.
   */
  exportAllMaxVms?: number;
}

/**
 * Default of BackupOptions.exportAllMaxVms: the fast path's backup of 1,000 VMs peaked at
 * 165-171 MiB (the CLI spools the export to a file; the split's index is about 30 MiB of
 * heap), under the 200 MiB goal.
 */
export const EXPORT_ALL_MAX_VMS = 1200;

export interface BackupResult {
  srUuid: string;
  vdiUuid: string;
  createdVdi: boolean;
  seq: number | null;
  date: string | null;
  vmCount: number;
  templateCount: number;
  rawBytes: number;
  storedBytes: number;
  evicted: number[];
  /** VMs left out (xapi kept refusing their export): the backup is partial when any. */
  skipped: SkippedVm[];
  /** What the ring found wrong with its root and recovered (also in the BackupWritten event). */
  rootWarnings?: string[];
}

/**
 * Backs up the pool's metadata to the Pool Metadata Backup VDI of an SR: capture (bounded
 * parallel, streamed into the compressed archive), then attach the VDI, append one record,
 * and always detach. Events: BackupStarted, BackupExportRetried / BackupVmSkipped (a busy VM
 * asked again / left out, as the backup decider rules), BackupPartsCaptured, BackupWritten |
 * BackupFailed, each appended when it is decided.
 */
export async function runBackup(deps: BackupDeps, opts: BackupOptions = {}): Promise<BackupResult> {
  const { pool, disk, archive, clock } = deps;
  const now = clock.now();
  const runId = newRunId(now);
  const rec = runStream(deps.events, `backup-${runId}`, backupDecider, { runId });
  const keep = opts.keep ?? DEFAULT_KEEP;
  let srUuid: string | null = opts.srUuid ?? null;
  try {
    const info = await pool.pool();
    srUuid = await resolveSr({ pool: async () => info }, srUuid);
    // `-c -n` creates the disk, then stops, as upstream's scripts/xe-backup-metadata does
    // (its -n check comes after the creation).
    const { vdiUuid, created: createdVdi } = await findOrCreateBackupVdi(pool, srUuid, {
      create: opts.create ?? false,
      ...(opts.vdiSize !== undefined ? { vdiSize: opts.vdiSize } : {}),
    });
    const base = {
      srUuid,
      vdiUuid,
      createdVdi,
      seq: null,
      date: null,
      vmCount: 0,
      templateCount: 0,
      rawBytes: 0,
      storedBytes: 0,
      evicted: [],
      skipped: [],
    };
    if (opts.findOnly) return base;
    await rec.exec({
      type: 'StartBackup',
      data: {
        runId,
        poolUuid: info.uuid,
        srUuid,
        vdiUuid,
        keep,
        trigger: opts.trigger ?? 'manual',
        toolVersion: TOOL_VERSION,
        formatVersion: BACKUP_FORMAT_VERSION,
        createdVdi,
      },
    });
    // 1. Capture, streamed into the archive; the raw pool is never held in memory at once.
    // The fast path (one request for every VM) is asked before the listings are read when the
    // pool's count of VM objects already shows it small enough: the pool then builds the
    // export while this side decodes the listings. Otherwise it is decided on the listings.
    const cap = opts.exportAllMaxVms ?? EXPORT_ALL_MAX_VMS;
    const fastPath = pool.exportAll !== undefined && opts.exportAll !== false;
    const bound = fastPath && pool.vmCount ? await pool.vmCount() : null;
    let all: Promise<ExportAll> | null = null;
    const askAll = (uuids?: readonly string[]): void => {
      const asked = pool.exportAll!(uuids);
      // Awaited after the listings; until then (or if the run stops first) a failure must not
      // surface as an unhandled rejection.
      asked.catch(() => {});
      all = asked;
      deps.onOneRequestExport?.();
    };
    // Asked first: its request reaches the pool while the listings are being built, not once
    // this side has read them.
    if (bound !== null && bound > 1 && bound <= cap) askAll();
    const listing = pool.inventory
      ? pool.inventory()
      : Promise.all([pool.vms(), pool.srs()]).then(([vms, srs]) => ({ vms, srs }));
    let released = false;
    /** Frees what holds the export (once), whether it was taken, built, or not (yet). */
    const releaseAll = () => {
      if (released || all === null) return;
      released = true;
      all.then((m) => m.close?.()).catch(() => {});
    };
    let vms: Awaited<typeof listing>['vms'];
    let srs: Awaited<typeof listing>['srs'];
    try {
      ({ vms, srs } = await listing);
    } catch (e) {
      releaseAll();
      throw e;
    }
    if (all === null && fastPath && vms.length > 1 && vms.length <= cap)
      askAll(vms.map((v) => v.uuid));
    const map: VmMapEntry[] = vms.map((v) => ({
      uuid: v.uuid,
      name: v.name,
      isTemplate: v.isTemplate,
      srUuids: v.srUuids,
    }));
    // done/total count the VMs and templates (what the summary counts); the pool database and
    // the SR metadata add bytes only.
    const total = vms.length;
    let done = 0;
    let bytes = 0;
    const tick = (n: number, item?: string, counts = true) => {
      if (counts) done++;
      bytes += n;
      deps.progress?.({ phase: 'capture', done, total, bytes, ...(item ? { item } : {}) });
    };
    const parallel = opts.parallel ?? DEFAULT_PARALLEL;
    const sleep = deps.sleep ?? realSleep;
    /**
     * One VM's export. A refusal goes to the backup decider (RecordExportRefused), which says
     * what happens: asked again after a delay (BackupExportRetried), left out
     * (BackupVmSkipped: the backup goes on, partial), or, deciding nothing, the run fails with
     * the refusal. This code only waits and asks again.
     */
    let prefetched: ExportAll | null = null;
    const exportVm = async (vm: (typeof vms)[number]): Promise<Uint8Array | null> => {
      const ready = prefetched?.get(vm.uuid);
      if (ready) {
        prefetched?.delete(vm.uuid);
        return ready();
      }
      for (;;) {
        try {
          return await pool.exportMetadata(vm.uuid);
        } catch (e) {
          const decided = await rec.exec({
            type: 'RecordExportRefused',
            data: {
              runId,
              vmUuid: vm.uuid,
              name: vm.name,
              isTemplate: vm.isTemplate,
              code: errorCode(e) ?? '',
              reason: (e as Error).message,
            },
          });
          const next = decided[0];
          if (next === undefined) throw e;
          if (next.type === 'BackupVmSkipped') return null;
          if (next.type !== 'BackupExportRetried') throw e;
          deps.signal?.throwIfAborted();
          await sleep(next.data.delayMs);
          deps.signal?.throwIfAborted();
        }
      }
    };
    /** The VMs left out so far, as the decider's state has them (with what the pool said). */
    const leftOut = (): SkippedVm[] =>
      rec.state().skipped.flatMap((s) => {
        const vm = vms.find((v) => v.uuid === s.vmUuid);
        return vm
          ? [
              {
                uuid: vm.uuid,
                name: vm.name,
                isTemplate: vm.isTemplate,
                srUuids: vm.srUuids,
                code: s.code,
                reason: s.reason,
              },
            ]
          : [];
      });
    /**
     * The backup disk's attachment, asked once: as soon as the pool has sent what the capture
     * needs from it, so that the pool plugs the disk while this side builds and compresses the
     * parts (plugging a VBD is slow on a real pool), or else after the capture.
     */
    let attaching: Promise<Attachment> | null = null;
    const attachEarly = (): Promise<Attachment> => {
      if (attaching === null) {
        deps.signal?.throwIfAborted();
        attaching = pool.attach(vdiUuid, { readOnly: false });
        attaching.catch(() => {}); // awaited after the capture; a failure must not go unhandled
      }
      return attaching;
    };
    /**
     * The pool database, asked once the pool has sent every VM's export: the pool builds it
     * while this side builds and compresses the VMs' parts (a pool builds one answer at a time:
     * asked with the export, it would hold back the export's last bytes), and its part comes
     * last in the archive (a reader takes parts by name). Streamed into the archive when the
     * pool gives chunks: a large pool's dump (93 MiB at 5,000 VMs) is never held whole.
     */
    let dump: ReturnType<PoolPort['dumpDatabase']> | null = null;
    const askDump = (): ReturnType<PoolPort['dumpDatabase']> => {
      if (dump === null) {
        dump = pool.dumpDatabase();
        dump.catch(() => {}); // awaited after the VMs; a failure must not go unhandled
      }
      return dump;
    };
    async function* parts(): AsyncIterable<ArchivePart> {
      // The fast path, asked above. Refused (a busy VM: xapi locks them all,
      // ocaml/xapi/export.ml metadata_handler) or failed, the per-VM exports below do the
      // work, with their retries; a VM it did not hold is exported on its own.
      try {
        if (all) {
          try {
            prefetched = await all;
            // The pool has sent every VM: it builds the dump and plugs the disk while this
            // side builds the parts.
            askDump();
            attachEarly();
          } catch (e) {
            deps.signal?.throwIfAborted();
            if (errorCode(e) === 'XAPI_CANCELLED') throw e;
            prefetched = null;
          }
        }
        // Exports run ahead of the archive by at most `parallel` requests, in order.
        const inflight: Promise<Uint8Array | null>[] = [];
        let i = 0;
        const launch = () => {
          const vm = vms[i++];
          if (!vm) return;
          const p = exportVm(vm);
          // Awaited in order later; until then (or if the run stops first) a failure must not
          // surface as an unhandled rejection, which would kill the process.
          p.catch(() => {});
          inflight.push(p);
        };
        for (let k = 0; k < parallel; k++) launch();
        for (const vm of vms) {
          deps.signal?.throwIfAborted();
          const data = await inflight.shift()!;
          launch();
          if (data === null) {
            tick(0, vm.name);
            continue;
          }
          tick(data.length, vm.name);
          yield { name: PART.vm(vm.uuid, vm.isTemplate), data };
        }
        const db = await askDump();
        if (db instanceof Uint8Array) {
          tick(db.length, 'pool database', false);
          yield { name: PART.poolDb, data: db };
        } else
          yield { name: PART.poolDb, data: counted(db, (n) => tick(n, 'pool database', false)) };
        attachEarly();
        const srmeta = new TextEncoder().encode(encodeSrMeta(srs));
        tick(srmeta.length, 'SR metadata', false);
        yield { name: PART.srmeta, data: srmeta };
        // The map lists what the record holds: a VM left out is named in the manifest instead.
        const out = new Set(leftOut().map((v) => v.uuid));
        const held = map.filter((v) => !out.has(v.uuid));
        yield { name: PART.vmMap, data: new TextEncoder().encode(JSON.stringify(held)) };
      } finally {
        // Whether the capture ended, failed or was aborted, and whether the exports were
        // taken or not (yet): what holds them (a spool file) is freed.
        prefetched = null;
        releaseAll();
      }
    }
    /** A disk attached while the capture ran, detached when the run stops before the append. */
    const detachEarly = async (): Promise<void> => {
      await (attaching as Promise<Attachment> | null)?.then(
        (a) => a.detach(),
        () => {}, // never attached: nothing to undo
      );
    };
    // However the capture ends, the export's spool is freed (parts() frees it too, once run).
    let archived: Awaited<ReturnType<ArchivePort['write']>>;
    try {
      archived = await archive.write(parts(), {}).finally(releaseAll);
    } catch (e) {
      await detachEarly();
      throw e;
    }
    const skippedVms = leftOut();
    const out = new Set(skippedVms.map((v) => v.uuid));
    const vmCount = vms.filter((v) => !v.isTemplate && !out.has(v.uuid)).length;
    const templateCount = vms.filter((v) => v.isTemplate && !out.has(v.uuid)).length;
    try {
      await rec.exec({
        type: 'RecordCapture',
        data: { runId, vmCount, templateCount, rawBytes: archived.rawBytes },
      });
      deps.progress?.({ phase: 'write', done: 0, total: 1, bytes: archived.storedBytes });
      deps.signal?.throwIfAborted();
    } catch (e) {
      await detachEarly();
      throw e;
    }

    // 2. Attach (done while the capture ended, when it could), append, always detach.
    const att = await attachEarly();
    let written: { seq: number; evicted: number[]; storedBytes: number; date: string };
    let rootWarnings: string[] = [];
    // A re-initialisation destroys the backups on the disk: the history says which.
    let destroyed: { seq: number; date: string }[] | null = null;
    try {
      if (opts.reinit && !createdVdi) destroyed = await backupsOn(disk, att, { vdiUuid, srUuid });
      const ring = await openOrFormat(
        disk,
        att,
        { vdiUuid, srUuid },
        { reinit: opts.reinit ?? false, justCreated: createdVdi, keep },
      );
      rootWarnings = ring.status?.warnings ?? [];
      for (const w of rootWarnings) deps.onNote?.(`warning: backup disk root: ${w}`);
      try {
        const taken = new Set(ring.list().map((r) => decodeLabel(r.label)?.date ?? ''));
        const date = uniqueDate(now, taken);
        const r = await appendRecord(
          archive,
          ring,
          archived,
          {
            formatVersion: BACKUP_FORMAT_VERSION,
            tool: 'xsmeta',
            toolVersion: TOOL_VERSION,
            poolUuid: info.uuid,
            srUuid,
            vdiUuid,
            date,
            createdAt: now.getTime(),
            vmCount,
            templateCount,
            ...(skippedVms.length > 0 ? { skipped: skippedVms } : {}),
          },
          keep,
        );
        written = { ...r, date };
        // Recorded as soon as the ring has committed it, before the disk is let go.
        await rec.exec({
          type: 'RecordWritten',
          data: {
            runId,
            srUuid,
            vdiUuid,
            seq: written.seq,
            date: written.date,
            vmCount,
            templateCount,
            rawBytes: archived.rawBytes,
            storedBytes: written.storedBytes,
            formatVersion: BACKUP_FORMAT_VERSION,
            evicted: written.evicted,
            ...(rootWarnings.length > 0 ? { rootWarnings } : {}),
            ...(destroyed ? { reinitialised: { destroyed } } : {}),
          },
        });
      } finally {
        await ring.close();
      }
    } finally {
      await att.detach();
    }
    return {
      ...base,
      seq: written.seq,
      date: written.date,
      vmCount,
      templateCount,
      rawBytes: archived.rawBytes,
      storedBytes: written.storedBytes,
      evicted: written.evicted,
      skipped: skippedVms,
      ...(rootWarnings.length > 0 ? { rootWarnings } : {}),
    };
  } catch (e) {
    if (rec.state().status === 'running') {
      await rec
        .exec({
          type: 'FailBackup',
          data: { runId, srUuid, code: errorCode(e) ?? 'ERROR', reason: (e as Error).message },
        })
        .catch(() => {});
    }
    throw e;
  }
}

/** Passes chunks through; `done` gets their total once the last one went. */
async function* counted(
  chunks: AsyncIterable<Uint8Array>,
  done: (bytes: number) => void,
): AsyncIterable<Uint8Array> {
  let n = 0;
  for await (const c of chunks) {
    n += c.length;
    yield c;
  }
  done(n);
}
