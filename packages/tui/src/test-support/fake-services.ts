/**
 * Over 400 lines on purpose: one fake of the whole `ConsoleServices` port, whose methods share
 * the pool, rings and schedule they change.
 *
 * An in-memory `ConsoleServices` for tests (and manual checks of the built console): a small
 * pool with a few SRs, a ring of backups on one of them, a legacy disk on another, a schedule
 * and, optionally, a password to log in with. It does what the real services promise: rings
 * keep at most `maxRecords` backups, a dry run changes nothing, abort stops soon and settles.
 * Not part of the package's API (not built, not exported).
 */
import { backupDate } from '@xsmeta/core';
import type {
  BackupList,
  BackupProgress,
  BackupResult,
  ConsoleServices,
  Frequency,
  LegacyBackupChoice,
  LegacyRestoreRequest,
  LegacyStatus,
  RestoreFailure,
  RestoreMode,
  RestoreRequest,
  RestoreSummary,
  ScheduleStatus,
  SrChoice,
  VmOutcome,
} from '../services.js';

export interface FakeVm {
  readonly uuid: string;
  readonly name: string;
  /** The SR its disks are on. */
  readonly srUuid: string;
  readonly template?: boolean;
}

export interface FakeRecord {
  readonly seq: number;
  readonly date: string;
  readonly vms: readonly FakeVm[];
  readonly storedBytes: number;
  readonly rawBytes: number;
  verified: boolean | null;
  damaged?: string;
}

export interface FakeRing {
  readonly capacity: number;
  readonly maxRecords: number;
  /** Oldest first. */
  records: FakeRecord[];
}

export interface FakeSr {
  readonly uuid: string;
  readonly name: string;
  readonly type: string;
  readonly sizeBytes: number;
  freeBytes: number;
  readonly isDefault: boolean;
  ring: FakeRing | null;
  /** Backups on a disk of the old scripts, newest first. */
  legacy: { readonly date: string; readonly vms: readonly FakeVm[] }[] | null;
}

export class FakeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface FakeOptions {
  /** When set, `needsLogin()` is true until `login('root', password)`. */
  readonly password?: string;
  /** backup(sr) fails with this message, after its first progress report. */
  readonly failBackup?: Readonly<Record<string, string>>;
  /** Importing these VMs fails with this message. */
  readonly failingVms?: Readonly<Record<string, string>>;
  /** listSrs fails with this message. */
  readonly failListSrs?: string;
  readonly frequency?: Frequency;
  /** restoreLegacy reports these as what reading the disk left out or doubted. */
  readonly legacyNotes?: readonly string[];
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const FAKE_VMS: readonly FakeVm[] = [
  { uuid: '0b9a4a40-0001-4000-8000-000000000001', name: 'web-01', srUuid: 'sr-nfs' },
  { uuid: '0b9a4a40-0002-4000-8000-000000000002', name: 'db-01', srUuid: 'sr-nfs' },
  { uuid: '0b9a4a40-0003-4000-8000-000000000003', name: 'mail-01', srUuid: 'sr-iscsi' },
  { uuid: '0b9a4a40-0004-4000-8000-000000000004', name: 'build-01', srUuid: 'sr-iscsi' },
  {
    uuid: '0b9a4a40-0005-4000-8000-000000000005',
    name: 'Debian 12 template',
    srUuid: 'sr-nfs',
    template: true,
  },
];

function record(seq: number, date: string, verified: boolean | null, damaged?: string): FakeRecord {
  return {
    seq,
    date,
    vms: FAKE_VMS,
    storedBytes: 9000 + seq,
    rawBytes: 40000 + seq,
    verified,
    ...(damaged === undefined ? {} : { damaged }),
  };
}

export class FakeConsoleServices implements ConsoleServices {
  /** Every call, in order, as `name arg...` (never a password). */
  readonly calls: string[] = [];
  readonly srs: FakeSr[];
  /** VMs the pool holds now (the restore target). */
  readonly poolVms = new Set<string>();
  readonly options: FakeOptions;
  #loggedIn: boolean;
  #schedule: ScheduleStatus;
  #clock = Date.parse('2025-03-01T10:00:00.000Z');
  #paused = false;
  #resume: (() => void)[] = [];

  constructor(options: FakeOptions = {}) {
    this.options = options;
    this.#loggedIn = options.password === undefined;
    this.srs = [
      {
        uuid: 'sr-nfs',
        name: 'NFS shared storage',
        type: 'nfs',
        sizeBytes: 2 * 1024 * GiB,
        freeBytes: 1200 * GiB,
        isDefault: true,
        ring: {
          capacity: 500 * MiB,
          maxRecords: 25,
          records: [
            record(1, '2025-02-26-02-00-00', false, 'checksum mismatch in block 12'),
            record(2, '2025-02-27-02-00-00', null),
            record(3, '2025-02-28-02-00-00', true),
          ],
        },
        legacy: null,
      },
      {
        uuid: 'sr-iscsi',
        name: 'iSCSI LUN 0',
        type: 'lvmoiscsi',
        sizeBytes: 500 * GiB,
        freeBytes: 80 * GiB,
        isDefault: false,
        ring: null,
        legacy: null,
      },
      {
        uuid: 'sr-old',
        name: 'Old NFS export',
        type: 'nfs',
        sizeBytes: 100 * GiB,
        freeBytes: 10 * GiB,
        isDefault: false,
        ring: null,
        legacy: [
          { date: '2019-06-02-03-00-00', vms: FAKE_VMS.slice(0, 3) },
          { date: '2019-06-01-03-00-00', vms: FAKE_VMS.slice(0, 2) },
        ],
      },
    ];
    const frequency = options.frequency ?? 'weekly';
    this.#schedule = {
      frequency,
      srUuid: 'sr-nfs',
      srName: 'NFS shared storage',
      nextRunAt: frequency === 'never' ? null : this.#next(frequency),
      lastRun: { at: '2025-02-28T02:00:00.000Z', outcome: 'success' },
    };
  }

  /** Hold backups and restores between two steps until `resume()` (or their abort). */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    for (const r of this.#resume.splice(0)) r();
  }

  #next(f: Frequency): string | null {
    const days = { daily: 1, weekly: 7, monthly: 30, never: 0 }[f];
    return days === 0 ? null : new Date(this.#clock + days * 86_400_000).toISOString();
  }

  /** One step of a long call: a turn of the event loop, and the pause if one is asked. */
  async #step(signal: AbortSignal): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    if (!this.#paused || signal.aborted) return;
    await new Promise<void>((resolve) => {
      this.#resume.push(resolve);
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }

  #sr(uuid: string): FakeSr {
    const sr = this.srs.find((s) => s.uuid === uuid);
    if (!sr) throw new FakeError('SR_NOT_FOUND', `There is no storage repository ${uuid}.`);
    return sr;
  }

  #guard(): void {
    if (!this.#loggedIn) throw new FakeError('NOT_LOGGED_IN', 'Log in first.');
  }

  needsLogin(): boolean {
    return !this.#loggedIn;
  }

  async login(username: string, password: string): Promise<void> {
    this.calls.push(`login ${username}`);
    await new Promise<void>((r) => setImmediate(r));
    if (username !== 'root' || password !== this.options.password) {
      throw new FakeError('SESSION_AUTHENTICATION_FAILED', 'The user name or password is wrong.');
    }
    this.#loggedIn = true;
  }

  async listSrs(): Promise<readonly SrChoice[]> {
    this.calls.push('listSrs');
    this.#guard();
    await new Promise<void>((r) => setImmediate(r));
    if (this.options.failListSrs) throw new FakeError('POOL_UNREACHABLE', this.options.failListSrs);
    return this.srs.map((s) => ({
      uuid: s.uuid,
      name: s.name,
      type: s.type,
      freeBytes: s.freeBytes,
      sizeBytes: s.sizeBytes,
      hasBackupDisk: s.ring !== null,
      hasLegacyDisk: s.legacy !== null,
      isDefault: s.isDefault,
    }));
  }

  async backup(
    srUuid: string,
    onProgress: (p: BackupProgress) => void,
    signal: AbortSignal,
  ): Promise<BackupResult> {
    this.calls.push(`backup ${srUuid}`);
    this.#guard();
    const sr = this.#sr(srUuid);
    const stopped = () => {
      this.calls.push('backup aborted');
      return new FakeError('ABORTED', 'Stopped before the record was written; nothing changed.');
    };
    let bytes = 0;
    onProgress({ phase: 'Reading the pool database', done: 0, total: 0, bytes });
    await this.#step(signal);
    const failure = this.options.failBackup?.[srUuid];
    if (failure) throw new FakeError('BACKUP_FAILED', failure);
    const vms = FAKE_VMS;
    for (let i = 0; i < vms.length; i++) {
      if (signal.aborted) throw stopped();
      bytes += 4096;
      onProgress({ phase: 'Exporting VM metadata', done: i + 1, total: vms.length, bytes });
      await this.#step(signal);
    }
    if (signal.aborted) throw stopped();
    onProgress({ phase: 'Writing to the backup disk', done: 1, total: 1, bytes });
    sr.ring ??= { capacity: 500 * MiB, maxRecords: 25, records: [] };
    const ring = sr.ring;
    this.#clock += 60_000;
    const seq = (ring.records[ring.records.length - 1]?.seq ?? 0) + 1;
    const rec: FakeRecord = {
      seq,
      date: backupDate(new Date(this.#clock)),
      vms,
      storedBytes: 9000 + seq,
      rawBytes: 40000 + seq,
      verified: true,
    };
    ring.records.push(rec);
    while (ring.records.length > ring.maxRecords) ring.records.shift();
    return {
      seq,
      date: rec.date,
      vmCount: vms.filter((v) => !v.template).length,
      templateCount: vms.filter((v) => v.template).length,
      storedBytes: rec.storedBytes,
      rawBytes: rec.rawBytes,
    };
  }

  async listBackups(srUuid: string): Promise<BackupList> {
    this.calls.push(`listBackups ${srUuid}`);
    this.#guard();
    await new Promise<void>((r) => setImmediate(r));
    const ring = this.#sr(srUuid).ring;
    if (!ring) {
      throw new FakeError('NO_BACKUP_DISK', 'This storage repository holds no backup disk.');
    }
    return {
      backups: [...ring.records].reverse().map((r) => ({
        seq: r.seq,
        date: r.date,
        vmCount: r.vms.filter((v) => !v.template).length,
        templateCount: r.vms.filter((v) => v.template).length,
        storedBytes: r.storedBytes,
        verified: r.verified,
        ...(r.damaged === undefined ? {} : { damaged: r.damaged }),
      })),
      usage: {
        capacity: ring.capacity,
        used: ring.records.reduce((n, r) => n + r.storedBytes, 0),
        maxRecords: ring.maxRecords,
        records: ring.records.map((r) => ({ seq: r.seq, size: r.storedBytes })),
      },
    };
  }

  async #import(
    vms: readonly FakeVm[],
    srUuid: string,
    mode: RestoreMode,
    dryRun: boolean,
    onVm: (ev: VmOutcome) => void,
    signal: AbortSignal,
  ): Promise<RestoreSummary> {
    const chosen = mode === 'sr' ? vms.filter((v) => v.srUuid === srUuid && !v.template) : vms;
    const errors: RestoreFailure[] = [];
    let restored = 0;
    for (let i = 0; i < chosen.length; i++) {
      await this.#step(signal);
      if (signal.aborted) {
        this.calls.push('restore aborted');
        break;
      }
      const vm = chosen[i]!;
      const error = this.options.failingVms?.[vm.uuid];
      if (error) errors.push({ vmUuid: vm.uuid, name: vm.name, message: error });
      else {
        restored++;
        if (!dryRun) this.poolVms.add(vm.uuid);
      }
      onVm({
        vmUuid: vm.uuid,
        name: vm.name,
        ok: !error,
        ...(error ? { error } : {}),
        done: i + 1,
        total: chosen.length,
      });
    }
    return { restored, errors };
  }

  async restore(
    req: RestoreRequest,
    onVm: (ev: VmOutcome) => void,
    signal: AbortSignal,
  ): Promise<RestoreSummary> {
    this.calls.push(`restore ${req.srUuid} ${req.seq} ${req.mode}${req.dryRun ? ' dry-run' : ''}`);
    this.#guard();
    const rec = this.#sr(req.srUuid).ring?.records.find((r) => r.seq === req.seq);
    if (!rec) throw new FakeError('NO_SUCH_BACKUP', `There is no backup #${req.seq}.`);
    if (rec.damaged) throw new FakeError('DAMAGED', `Backup #${req.seq} is damaged.`);
    return this.#import(rec.vms, req.srUuid, req.mode, req.dryRun, onVm, signal);
  }

  async legacyStatus(srUuid: string): Promise<LegacyStatus> {
    this.calls.push(`legacyStatus ${srUuid}`);
    this.#guard();
    await new Promise<void>((r) => setImmediate(r));
    const sr = this.#sr(srUuid);
    if (sr.ring) {
      return {
        available: false,
        reason:
          'This storage repository holds a new-format Pool Metadata Backup disk, so legacy disks on it are ignored, as XenServer does. Use Restore Virtual Machine Metadata.',
      };
    }
    if (!sr.legacy) {
      return {
        available: false,
        reason: 'No disk written by the old backup scripts was found on this storage repository.',
      };
    }
    return { available: true };
  }

  async listLegacyBackups(srUuid: string): Promise<readonly LegacyBackupChoice[]> {
    this.calls.push(`listLegacyBackups ${srUuid}`);
    this.#guard();
    await new Promise<void>((r) => setImmediate(r));
    return (this.#sr(srUuid).legacy ?? []).map((b) => ({
      date: b.date,
      vmCount: b.vms.filter((v) => !v.template).length,
    }));
  }

  async restoreLegacy(
    req: LegacyRestoreRequest,
    onVm: (ev: VmOutcome) => void,
    signal: AbortSignal,
  ): Promise<RestoreSummary> {
    this.calls.push(
      `restoreLegacy ${req.srUuid} ${req.date} ${req.mode}${req.dryRun ? ' dry-run' : ''}`,
    );
    this.#guard();
    const b = this.#sr(req.srUuid).legacy?.find((x) => x.date === req.date);
    if (!b) throw new FakeError('NO_SUCH_BACKUP', `There is no legacy backup of ${req.date}.`);
    const summary = await this.#import(b.vms, req.srUuid, req.mode, req.dryRun, onVm, signal);
    const notes = this.options.legacyNotes;
    return notes ? { ...summary, notes } : summary;
  }

  async getSchedule(): Promise<ScheduleStatus> {
    this.calls.push('getSchedule');
    this.#guard();
    await new Promise<void>((r) => setImmediate(r));
    return this.#schedule;
  }

  async setSchedule(frequency: Frequency): Promise<void> {
    this.calls.push(`setSchedule ${frequency}`);
    this.#guard();
    await new Promise<void>((r) => setImmediate(r));
    this.#schedule = { ...this.#schedule, frequency, nextRunAt: this.#next(frequency) };
  }
}
