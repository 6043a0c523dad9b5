import type { BackupEvent, ConvertEvent, RestoreEvent } from '../events/index.js';
import { parseBackupDate } from './backup-date.js';
import { type Decider, DomainError } from './decider.js';

type Data<E extends { type: string; data: unknown }, T extends E['type']> = Extract<
  E,
  { type: T }
>['data'];

/**
 * The codes with which xapi refuses to lock a VM for a metadata export while another
 * operation holds it: `lock_vm` in ocaml/xapi/export.ml asks
 * `Xapi_vm_lifecycle.assert_operation_valid` (ocaml/xapi/xapi_vm_lifecycle.ml). Such a
 * refusal is retried; anything else fails the backup.
 */
export const BUSY_VM_CODES: ReadonlySet<string> = new Set([
  'OTHER_OPERATION_IN_PROGRESS',
  'OPERATION_NOT_ALLOWED',
  'OPERATION_BLOCKED',
  'VM_BAD_POWER_STATE',
]);

/** Waits before each retry of a refused export; after the last the VM is left out. */
export const EXPORT_RETRY_DELAYS_MS: readonly number[] = [2_000, 5_000, 10_000];

/** A VM the run left out, as its BackupVmSkipped event says. */
export interface LeftOutVm {
  vmUuid: string;
  code: string;
  reason: string;
  attempts: number;
}

export interface BackupRunState {
  status: 'idle' | 'running' | 'written' | 'failed';
  runId: string | null;
  srUuid: string | null;
  /** Refusals of each VM's export so far (by VM uuid). */
  refusals: Record<string, number>;
  /** The VMs left out, in the order decided: any makes the backup partial. */
  skipped: LeftOutVm[];
}

export type BackupCommand =
  | { type: 'StartBackup'; data: Data<BackupEvent, 'BackupStarted'> }
  | { type: 'RecordCapture'; data: Omit<Data<BackupEvent, 'BackupPartsCaptured'>, 'skippedVms'> }
  | { type: 'RecordWritten'; data: Omit<Data<BackupEvent, 'BackupWritten'>, 'skippedVms'> }
  | {
      /** xapi refused a VM's export: retry it or leave it out (the decider says which). */
      type: 'RecordExportRefused';
      data: {
        runId: string;
        vmUuid: string;
        name: string;
        isTemplate: boolean;
        code: string;
        reason: string;
      };
    }
  | { type: 'FailBackup'; data: Data<BackupEvent, 'BackupFailed'> };

/** The `skippedVms` count a partial backup's events carry (absent on a whole one). */
const partial = (s: BackupRunState) =>
  s.skipped.length > 0 ? { skippedVms: s.skipped.length } : {};

/**
 * One backup run: started once, then written or failed once; nothing after that. A refused
 * export (RecordExportRefused) with a busy code (BUSY_VM_CODES) is retried after the next
 * delay of EXPORT_RETRY_DELAYS_MS (BackupExportRetried); refused once more than there are
 * delays, the VM is left out (BackupVmSkipped) and the backup goes on, partial, as upstream's
 * script skips a VM whose export fails. Any other refusal is not the decider's to retry: it
 * decides nothing, and the run fails with the refusal. The capture and the written record of
 * a partial backup carry how many VMs it left out.
 */
export const backupDecider: Decider<BackupCommand, BackupEvent, BackupRunState> = {
  initialState: () => ({ status: 'idle', runId: null, srUuid: null, refusals: {}, skipped: [] }),
  decide(cmd, s) {
    if (cmd.type === 'StartBackup') {
      if (s.status !== 'idle')
        throw new DomainError('RUN_ALREADY_STARTED', `backup run ${s.runId} has already started`);
      return [{ type: 'BackupStarted', data: cmd.data }];
    }
    if (cmd.type === 'FailBackup') {
      if (s.status === 'written' || s.status === 'failed')
        throw new DomainError('RUN_FINISHED', 'the backup run has finished');
      return [{ type: 'BackupFailed', data: cmd.data }];
    }
    if (s.status !== 'running')
      throw new DomainError('RUN_NOT_STARTED', 'the backup run is not in progress');
    switch (cmd.type) {
      case 'RecordExportRefused': {
        const { runId, vmUuid, name, isTemplate, code, reason } = cmd.data;
        if (s.skipped.some((v) => v.vmUuid === vmUuid))
          throw new DomainError('VM_ALREADY_SKIPPED', `VM ${vmUuid} is already left out`);
        if (!BUSY_VM_CODES.has(code)) return [];
        const attempt = (s.refusals[vmUuid] ?? 0) + 1;
        const delayMs = EXPORT_RETRY_DELAYS_MS[attempt - 1];
        return delayMs === undefined
          ? [
              {
                type: 'BackupVmSkipped',
                data: { runId, vmUuid, name, isTemplate, code, reason, attempts: attempt },
              },
            ]
          : [{ type: 'BackupExportRetried', data: { runId, vmUuid, code, attempt, delayMs } }];
      }
      case 'RecordCapture':
        return [{ type: 'BackupPartsCaptured', data: { ...cmd.data, ...partial(s) } }];
      case 'RecordWritten':
        return [{ type: 'BackupWritten', data: { ...cmd.data, ...partial(s) } }];
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'BackupStarted':
        return { ...s, status: 'running', runId: e.data.runId, srUuid: e.data.srUuid };
      case 'BackupExportRetried':
        return { ...s, refusals: { ...s.refusals, [e.data.vmUuid]: e.data.attempt } };
      case 'BackupVmSkipped': {
        const { vmUuid, code, reason, attempts } = e.data;
        return {
          ...s,
          refusals: { ...s.refusals, [vmUuid]: attempts },
          skipped: [...s.skipped, { vmUuid, code, reason, attempts }],
        };
      }
      case 'BackupPartsCaptured':
        return s;
      case 'BackupWritten':
        return { ...s, status: 'written' };
      case 'BackupFailed':
        return { ...s, status: 'failed' };
    }
  },
};

export interface RestoreRunState {
  status: 'idle' | 'running' | 'finished' | 'refused' | 'interrupted';
  runId: string | null;
  dryRun: boolean;
  restored: number;
  failed: string[];
}

export type RestoreCommand =
  | { type: 'RequestRestore'; data: Data<RestoreEvent, 'RestoreRequested'> }
  | { type: 'RefuseRestore'; data: Data<RestoreEvent, 'RestoreRefused'> }
  | { type: 'RecordVmRestored'; data: Data<RestoreEvent, 'VmRestored'> }
  | { type: 'RecordVmFailed'; data: Data<RestoreEvent, 'VmRestoreFailed'> }
  | { type: 'RecordSrMetadata'; data: Data<RestoreEvent, 'SrMetadataRestored'> }
  | { type: 'SkipSrMetadata'; data: Data<RestoreEvent, 'SrMetadataSkipped'> }
  | { type: 'FinishRestore'; data: { runId: string } }
  | { type: 'InterruptRestore'; data: { runId: string; reason: string } };

/**
 * The line a restore ends with, in the CLI (as upstream's xe-restore-metadata prints it) and
 * in the console (as xsconsole shows it): N counts every VM and custom template imported.
 */
export function restoreSummaryLine(restored: number, errors: number): string {
  return `Restored ${restored} VM(s), and ${errors} error(s)`;
}

/**
 * One restore run. The summary (`Restored N VM(s), and M error(s)`) is decided from the state:
 * the counts in RestoreFinished are those of the VmRestored / VmRestoreFailed events.
 */
export const restoreDecider: Decider<RestoreCommand, RestoreEvent, RestoreRunState> = {
  initialState: () => ({ status: 'idle', runId: null, dryRun: false, restored: 0, failed: [] }),
  decide(cmd, s) {
    switch (cmd.type) {
      case 'RequestRestore':
        if (s.status !== 'idle')
          throw new DomainError(
            'RUN_ALREADY_STARTED',
            `restore run ${s.runId} has already started`,
          );
        return [{ type: 'RestoreRequested', data: cmd.data }];
      case 'RefuseRestore':
        if (s.status === 'finished' || s.status === 'refused')
          throw new DomainError('RUN_FINISHED', 'the restore run has finished');
        return [{ type: 'RestoreRefused', data: cmd.data }];
      case 'FinishRestore':
      case 'InterruptRestore': {
        if (s.status !== 'running')
          throw new DomainError('RUN_NOT_STARTED', 'the restore run is not in progress');
        const counts = {
          runId: cmd.data.runId,
          restored: s.restored,
          errors: s.failed.length,
          dryRun: s.dryRun,
        };
        return cmd.type === 'FinishRestore'
          ? [{ type: 'RestoreFinished', data: counts }]
          : [{ type: 'RestoreInterrupted', data: { ...counts, reason: cmd.data.reason } }];
      }
      default:
        if (s.status !== 'running')
          throw new DomainError('RUN_NOT_STARTED', 'the restore run is not in progress');
        switch (cmd.type) {
          case 'RecordVmRestored':
            return [{ type: 'VmRestored', data: cmd.data }];
          case 'RecordVmFailed':
            return [{ type: 'VmRestoreFailed', data: cmd.data }];
          case 'RecordSrMetadata':
            return [{ type: 'SrMetadataRestored', data: cmd.data }];
          case 'SkipSrMetadata':
            return [{ type: 'SrMetadataSkipped', data: cmd.data }];
        }
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'RestoreRequested':
        return { ...s, status: 'running', runId: e.data.runId, dryRun: e.data.dryRun };
      case 'VmRestored':
        return { ...s, restored: s.restored + 1 };
      case 'VmRestoreFailed':
        return { ...s, failed: [...s.failed, e.data.vmUuid] };
      case 'RestoreFinished':
        return { ...s, status: 'finished' };
      case 'RestoreRefused':
        return { ...s, status: 'refused' };
      case 'RestoreInterrupted':
        return { ...s, status: 'interrupted' };
      default:
        return s;
    }
  },
};

export interface ConvertRunState {
  status: 'idle' | 'running' | 'finished' | 'failed';
  runId: string | null;
  /** Dates converted so far, in order. */
  converted: string[];
}

/**
 * Which legacy dates a conversion takes and why it leaves the others: newest first, a date in
 * the future is left (it would list, and restore by default, before every real backup), and
 * so is every date beyond the `keep` newest (the ring keeps no more: converting them would
 * only evict what was just converted). A date that cannot be read as one counts as future.
 */
export function chooseConvertDates(
  candidates: readonly string[],
  now: Date,
  keep: number,
): { take: string[]; skip: { date: string; reason: string }[] } {
  const take: string[] = [];
  const skip: { date: string; reason: string }[] = [];
  for (const d of [...new Set(candidates)].sort().reverse()) {
    if ((parseBackupDate(d)?.getTime() ?? Number.POSITIVE_INFINITY) > now.getTime())
      skip.push({ date: d, reason: 'dated in the future' });
    else if (take.length >= keep)
      skip.push({ date: d, reason: `older than the ${keep} newest, which the ring keeps` });
    else take.push(d);
  }
  return { take, skip };
}

type StartData = Data<ConvertEvent, 'LegacyConvertStarted'>;

export type ConvertCommand =
  | {
      type: 'StartConvert';
      data: Omit<StartData, 'dates' | 'skipped'> & {
        /** The dates asked for (or all on the disk). */
        candidates: readonly string[];
        /** The time of the decision (ISO). */
        now: string;
        keep: number;
      };
    }
  | { type: 'RecordConverted'; data: Data<ConvertEvent, 'LegacyBackupConverted'> }
  | { type: 'FinishConvert'; data: Omit<Data<ConvertEvent, 'LegacyConvertFinished'>, 'converted'> }
  | { type: 'FailConvert'; data: Data<ConvertEvent, 'LegacyConvertFailed'> };

/** One conversion: each date converted at most once; the count in Finished is the state's. */
export const convertDecider: Decider<ConvertCommand, ConvertEvent, ConvertRunState> = {
  initialState: () => ({ status: 'idle', runId: null, converted: [] }),
  decide(cmd, s) {
    switch (cmd.type) {
      case 'StartConvert':
        if (s.status !== 'idle')
          throw new DomainError('RUN_ALREADY_STARTED', `conversion ${s.runId} has already started`);
        {
          const { candidates, now, keep, ...rest } = cmd.data;
          const { take, skip } = chooseConvertDates(candidates, new Date(now), keep);
          return [{ type: 'LegacyConvertStarted', data: { ...rest, dates: take, skipped: skip } }];
        }
      case 'FailConvert':
        if (s.status === 'finished' || s.status === 'failed')
          throw new DomainError('RUN_FINISHED', 'the conversion has finished');
        return [{ type: 'LegacyConvertFailed', data: cmd.data }];
      default:
        if (s.status !== 'running')
          throw new DomainError('RUN_NOT_STARTED', 'the conversion is not in progress');
        if (cmd.type === 'FinishConvert')
          return [
            {
              type: 'LegacyConvertFinished',
              data: { ...cmd.data, converted: s.converted.length },
            },
          ];
        if (s.converted.includes(cmd.data.date))
          throw new DomainError(
            'ALREADY_CONVERTED',
            `the backup of ${cmd.data.date} is already converted`,
          );
        return [{ type: 'LegacyBackupConverted', data: cmd.data }];
    }
  },
  evolve(s, e) {
    switch (e.type) {
      case 'LegacyConvertStarted':
        return { status: 'running', runId: e.data.runId, converted: [] };
      case 'LegacyBackupConverted':
        return { ...s, converted: [...s.converted, e.data.date] };
      case 'LegacyConvertFinished':
        return { ...s, status: 'finished' };
      case 'LegacyConvertFailed':
        return { ...s, status: 'failed' };
    }
  },
};

/** An event as the store hands it back (stream and type, data as recorded). */
