/**
 * Every event xsmeta records. Plain readonly data; the store adds position, stream, version
 * and time. Streams: `backup-<runId>`, `restore-<runId>`, `schedule`, `legacy-<runId>`.
 */
export type Trigger = 'manual' | 'schedule';
export type Frequency = 'daily' | 'weekly' | 'monthly' | 'never';

export type BackupEvent =
  | {
      readonly type: 'BackupStarted';
      readonly data: {
        readonly runId: string;
        readonly poolUuid: string;
        readonly srUuid: string;
        readonly vdiUuid: string;
        readonly keep: number;
        readonly trigger: Trigger;
        readonly toolVersion: string;
        readonly formatVersion: number;
        readonly createdVdi: boolean;
      };
    }
  | {
      readonly type: 'BackupPartsCaptured';
      readonly data: {
        readonly runId: string;
        readonly vmCount: number;
        readonly templateCount: number;
        readonly rawBytes: number;
        /** Present when the backup is partial: how many VMs it left out (BackupVmSkipped). */
        readonly skippedVms?: number;
      };
    }
  | {
      readonly type: 'BackupWritten';
      readonly data: {
        readonly runId: string;
        readonly srUuid: string;
        readonly vdiUuid: string;
        readonly seq: number;
        readonly date: string;
        readonly vmCount: number;
        readonly templateCount: number;
        readonly rawBytes: number;
        readonly storedBytes: number;
        readonly formatVersion: number;
        readonly evicted: readonly number[];
        /** What opening the ring found wrong with its root, recovered before this append. */
        readonly rootWarnings?: readonly string[];
        /** Present when the run re-initialised the ring (`-i`): the backups it destroyed. */
        readonly reinitialised?: { readonly destroyed: readonly { seq: number; date: string }[] };
        /** Present when the backup is partial: how many VMs it left out (BackupVmSkipped). */
        readonly skippedVms?: number;
      };
    }
  | {
      /**
       * xapi refused a VM's export because another operation holds it: it is asked again
       * after `delayMs` (the backup decider's retry rule). Its `attempt`-th refusal.
       */
      readonly type: 'BackupExportRetried';
      readonly data: {
        readonly runId: string;
        readonly vmUuid: string;
        readonly code: string;
        readonly attempt: number;
        readonly delayMs: number;
      };
    }
  | {
      /**
       * A VM (or custom template) left out of the backup: xapi kept refusing its export (a
       * conflicting operation held it) after every retry. The backup is partial.
       */
      readonly type: 'BackupVmSkipped';
      readonly data: {
        readonly runId: string;
        readonly vmUuid: string;
        readonly name: string;
        readonly isTemplate: boolean;
        readonly code: string;
        readonly reason: string;
        readonly attempts: number;
      };
    }
  | {
      readonly type: 'BackupFailed';
      readonly data: {
        readonly runId: string;
        readonly srUuid: string | null;
        readonly code: string;
        readonly reason: string;
      };
    };

export type RestoreEvent =
  | {
      readonly type: 'RestoreRequested';
      readonly data: {
        readonly runId: string;
        readonly poolUuid: string;
        readonly srUuid: string;
        readonly vdiUuid: string;
        readonly date: string;
        readonly seq: number | null;
        readonly mode: 'sr' | 'all';
        readonly dryRun: boolean;
        readonly force: boolean;
        readonly legacy: boolean;
        readonly formatVersion: number;
      };
    }
  | {
      readonly type: 'VmRestored';
      readonly data: {
        readonly runId: string;
        readonly vmUuid: string;
        readonly name: string;
        readonly isTemplate: boolean;
        readonly dryRun: boolean;
      };
    }
  | {
      readonly type: 'VmRestoreFailed';
      readonly data: {
        readonly runId: string;
        readonly vmUuid: string;
        readonly name: string;
        readonly code: string;
        readonly params: readonly string[];
        readonly message: string;
      };
    }
  | {
      readonly type: 'SrMetadataRestored';
      readonly data: {
        readonly runId: string;
        readonly srUuid: string;
        readonly vdis: number;
        readonly dryRun: boolean;
      };
    }
  | {
      readonly type: 'SrMetadataSkipped';
      readonly data: { readonly runId: string; readonly srUuid: string; readonly reason: string };
    }
  | {
      readonly type: 'RestoreFinished';
      readonly data: {
        readonly runId: string;
        readonly restored: number;
        readonly errors: number;
        readonly dryRun: boolean;
      };
    }
  | {
      readonly type: 'RestoreRefused';
      readonly data: { readonly runId: string; readonly code: string; readonly reason: string };
    }
  | {
      /** A signal ended the run: the VMs recorded before it stand, the rest were not tried. */
      readonly type: 'RestoreInterrupted';
      readonly data: {
        readonly runId: string;
        readonly restored: number;
        readonly errors: number;
        readonly dryRun: boolean;
        readonly reason: string;
      };
    };

export type ScheduleEvent =
  | {
      readonly type: 'ScheduleChanged';
      readonly data: {
        readonly from: Frequency;
        readonly to: Frequency;
        readonly by: string;
        readonly at: string;
      };
    }
  | {
      readonly type: 'ScheduledRunStarted';
      readonly data: { readonly slot: string; readonly runId: string };
    }
  | {
      readonly type: 'ScheduledRunFinished';
      readonly data: {
        readonly slot: string;
        readonly runId: string;
        readonly outcome: 'success' | 'failure';
        readonly srUuid: string | null;
        readonly error?: string;
      };
    };

/** `xsmeta legacy convert`: legacy (ext3) backups copied into the ring as records. */
export type ConvertEvent =
  | {
      readonly type: 'LegacyConvertStarted';
      readonly data: {
        readonly runId: string;
        readonly srUuid: string;
        readonly vdiUuid: string;
        readonly legacyVdiUuid: string;
        /** The dates this run converts, newest first. */
        readonly dates: readonly string[];
        /** The dates it leaves, and why (the decider's rule; absent in older logs). */
        readonly skipped?: readonly { readonly date: string; readonly reason: string }[];
        readonly toolVersion: string;
        readonly formatVersion: number;
      };
    }
  | {
      readonly type: 'LegacyBackupConverted';
      readonly data: {
        readonly runId: string;
        readonly date: string;
        readonly seq: number;
        readonly vmCount: number;
        readonly templateCount: number;
        readonly rawBytes: number;
        readonly storedBytes: number;
        readonly fromFormatVersion: number;
        readonly formatVersion: number;
      };
    }
  | {
      readonly type: 'LegacyConvertFinished';
      readonly data: {
        readonly runId: string;
        readonly converted: number;
        readonly skipped: readonly { readonly date: string; readonly reason: string }[];
        /** The copy of the legacy disk kept before its VDI was turned into the ring. */
        readonly keptCopyVdiUuid: string | null;
      };
    }
  | {
      readonly type: 'LegacyConvertFailed';
      readonly data: { readonly runId: string; readonly code: string; readonly reason: string };
    };

export type XsmetaEvent = BackupEvent | RestoreEvent | ScheduleEvent | ConvertEvent;
export type EventType = XsmetaEvent['type'];

/** The event types this build knows; anything else read from the log is reported. */
export const KNOWN_EVENT_TYPES: ReadonlySet<string> = new Set<EventType>([
  'BackupStarted',
  'BackupPartsCaptured',
  'BackupWritten',
  'BackupVmSkipped',
  'BackupExportRetried',
  'BackupFailed',
  'RestoreRequested',
  'VmRestored',
  'VmRestoreFailed',
  'SrMetadataRestored',
  'SrMetadataSkipped',
  'RestoreFinished',
  'RestoreRefused',
  'RestoreInterrupted',
  'ScheduleChanged',
  'ScheduledRunStarted',
  'ScheduledRunFinished',
  'LegacyConvertStarted',
  'LegacyBackupConverted',
  'LegacyConvertFinished',
  'LegacyConvertFailed',
]);
