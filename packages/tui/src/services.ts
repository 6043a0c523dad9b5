/**
 * The port the console drives. The console does no I/O of its own: everything it shows comes
 * from, and everything it changes goes through, an implementation of `ConsoleServices`
 * (the CLI builds one over the real pool, ring and event store; tests use an in-memory fake).
 *
 * Rules for implementations:
 * - Reject with an `Error` whose `message` is one plain sentence for an administrator; the
 *   console shows it as is (and a `code` property, when present, after it).
 * - Honour the `AbortSignal`: stop soon after it fires and settle the promise (resolve with
 *   what was done, or reject); the console waits a few seconds for that when it exits.
 * - Do not call the progress callbacks after the promise settled.
 */

import type { Frequency } from '@xsmeta/core';

export type { Frequency };

/** `sr`: only the VMs whose disks live on the chosen SR; `all`: every VM of the backup. */
export type RestoreMode = 'sr' | 'all';

/** A storage repository the administrator can pick. */
export interface SrChoice {
  readonly uuid: string;
  readonly name: string;
  /** The SR type, as XAPI names it (`nfs`, `lvmoiscsi`, `ext`, ...). */
  readonly type: string;
  readonly freeBytes: number;
  readonly sizeBytes: number;
  /** The SR holds the Pool Metadata Backup disk (the one with the deterministic UUID). */
  readonly hasBackupDisk: boolean;
  /** The SR seems to hold a disk written by the old scripts (only the legacy flow uses it). */
  readonly hasLegacyDisk?: boolean;
  /** The pool's default SR (scheduled backups go there). */
  readonly isDefault: boolean;
}

export interface BackupProgress {
  /** What is happening now, in a few plain words ("Exporting VM metadata"). */
  readonly phase: string;
  /** Steps done and the total of the phase (0 and 0 when the phase has no steps). */
  readonly done: number;
  readonly total: number;
  /** Bytes written so far. */
  readonly bytes: number;
}

export interface BackupResult {
  /** The record's sequence number in the ring. */
  readonly seq: number;
  /** `YYYY-MM-DD-HH-MM-SS`, as `xe-restore-metadata -l` prints it. */
  readonly date: string;
  readonly vmCount: number;
  readonly templateCount: number;
  /** Bytes the record takes on the disk, and the size of its content before compression. */
  readonly storedBytes: number;
  readonly rawBytes: number;
}

/** One backup kept in an SR's ring. */
export interface BackupChoice {
  readonly seq: number;
  /** `YYYY-MM-DD-HH-MM-SS`. */
  readonly date: string;
  readonly vmCount: number;
  readonly templateCount: number;
  readonly storedBytes: number;
  /** `true` verified, `false` failed verification, `null` not checked. */
  readonly verified: boolean | null;
  /** Why the record cannot be restored, when it is damaged. */
  readonly damaged?: string;
}

/** How full an SR's ring is. */
export interface RingUsage {
  readonly capacity: number;
  readonly used: number;
  readonly maxRecords: number;
  /** The kept records, oldest first. */
  readonly records: readonly { readonly seq: number; readonly size: number }[];
}

export interface BackupList {
  /** Newest first. */
  readonly backups: readonly BackupChoice[];
  readonly usage: RingUsage;
}

export interface RestoreRequest {
  readonly srUuid: string;
  readonly seq: number;
  readonly mode: RestoreMode;
  /** Every check, no change to the pool. */
  readonly dryRun: boolean;
  /** Replace VMs that already exist in the pool (vm-import's force); default false. */
  readonly force?: boolean;
}

export interface LegacyRestoreRequest {
  readonly srUuid: string;
  /** `YYYY-MM-DD-HH-MM-SS`, one of `listLegacyBackups`. */
  readonly date: string;
  readonly mode: RestoreMode;
  readonly dryRun: boolean;
}

/** Reported once per VM or custom template, when its import finished (or failed). */
export interface VmOutcome {
  readonly vmUuid: string;
  readonly name: string;
  readonly ok: boolean;
  readonly error?: string;
  /** How many of `total` are finished, this one included. */
  readonly done: number;
  readonly total: number;
}

export interface RestoreFailure {
  readonly vmUuid: string;
  readonly name: string;
  readonly message: string;
}

export interface RestoreSummary {
  /** VMs and custom templates imported (or that would be, in a dry run). */
  readonly restored: number;
  readonly errors: readonly RestoreFailure[];
  /** What reading the backup left out or doubted (a legacy disk's skipped entries, warnings). */
  readonly notes?: readonly string[];
}

export interface LegacyStatus {
  readonly available: boolean;
  /** Why not, when not available. */
  readonly reason?: string;
}

export interface LegacyBackupChoice {
  /** `YYYY-MM-DD-HH-MM-SS`. */
  readonly date: string;
  /** 0 when the backup cannot be read (`damaged` says why). */
  readonly vmCount: number;
  /** Set when this backup's folders cannot be read: it is listed, not restorable. */
  readonly damaged?: string;
}

/** What `xsmeta schedule --json` prints (core's `scheduleSummary` builds it). */
export interface ScheduleStatus {
  readonly frequency: Frequency;
  /** The SR scheduled backups go to (the pool's default SR), when known. */
  readonly srUuid: string | null;
  /** That SR's name, when known: the schedule screen names it. */
  readonly srName?: string | null;
  /** ISO 8601 instant of the next scheduled backup, or null when none is due. */
  readonly nextRunAt: string | null;
  readonly lastRun: {
    /** ISO 8601 instant. */
    readonly at: string;
    readonly outcome: 'success' | 'failure';
    readonly error?: string;
  } | null;
}

export interface ConsoleServices {
  /** True when no credentials are configured: the console asks for them before any action. */
  needsLogin(): boolean;
  /** Checks the credentials with the pool and keeps them for the calls that follow. */
  login(username: string, password: string): Promise<void>;
  /** The SRs that can hold a backup disk, in the order to show them. */
  listSrs(): Promise<readonly SrChoice[]>;
  backup(
    srUuid: string,
    onProgress: (p: BackupProgress) => void,
    signal: AbortSignal,
  ): Promise<BackupResult>;
  listBackups(srUuid: string): Promise<BackupList>;
  restore(
    req: RestoreRequest,
    onVm: (ev: VmOutcome) => void,
    signal: AbortSignal,
  ): Promise<RestoreSummary>;
  /** Unavailable on an SR holding a new-format backup disk (XenServer's rule). */
  legacyStatus(srUuid: string): Promise<LegacyStatus>;
  /** Newest first. */
  listLegacyBackups(srUuid: string): Promise<readonly LegacyBackupChoice[]>;
  restoreLegacy(
    req: LegacyRestoreRequest,
    onVm: (ev: VmOutcome) => void,
    signal: AbortSignal,
  ): Promise<RestoreSummary>;
  getSchedule(): Promise<ScheduleStatus>;
  setSchedule(frequency: Frequency): Promise<void>;
}
