/**
 * Partial backups as the backup decider rules them: a VM whose export xapi refuses because
 * another operation holds it (`lock_vm` in ocaml/xapi/export.ml) is asked again after each
 * delay, then left out; the backup goes on and its capture and record say it is partial.
 */
import { describe, it } from 'vitest';
import {
  type BackupEvent,
  BUSY_VM_CODES,
  backupDecider,
  EXPORT_RETRY_DELAYS_MS,
} from '../src/index.js';
import { BACKUP_STARTED, backupWritten } from './backup-events.js';
import { DeciderSpecification } from './decider-spec.js';

const spec = DeciderSpecification.for(backupDecider);

const started = BACKUP_STARTED;
const vmB = { runId: 'r', vmUuid: 'vm-b', name: 'vm b', isTemplate: false };
const refused = (code = 'OTHER_OPERATION_IN_PROGRESS') => ({
  type: 'RecordExportRefused' as const,
  data: { ...vmB, code, reason: 'busy' },
});
const retried = (
  attempt: number,
  { vmUuid = 'vm-b', code = 'OTHER_OPERATION_IN_PROGRESS' } = {},
): BackupEvent => ({
  type: 'BackupExportRetried',
  data: {
    runId: 'r',
    vmUuid,
    code,
    attempt,
    delayMs: EXPORT_RETRY_DELAYS_MS[attempt - 1]!,
  },
});
const skipped: BackupEvent = {
  type: 'BackupVmSkipped',
  data: { ...vmB, code: 'OTHER_OPERATION_IN_PROGRESS', reason: 'busy', attempts: 4 },
};
const capture = { runId: 'r', vmCount: 2, templateCount: 0, rawBytes: 10 };
const written = backupWritten();

describe('the backup decider: busy VMs and partial backups', () => {
  it('retries a busy VM after the first delay on its first refusal', () => {
    spec
      .given([started])
      .when(refused())
      .thenEvents([retried(1)]);
  });

  it('waits longer on each refusal, per VM', () => {
    spec
      .given([started, retried(1)])
      .when(refused())
      .thenEvents([retried(2)]);
    spec
      .given([started, retried(1), retried(2)])
      .when(refused())
      .thenEvents([retried(3)]);
    // Another VM's refusals do not count against this one.
    spec
      .given([started, retried(1), retried(2)])
      .when({ ...refused(), data: { ...refused().data, vmUuid: 'vm-c' } })
      .thenEvents([retried(1, { vmUuid: 'vm-c' })]);
  });

  it('leaves the VM out once refused after the last delay', () => {
    spec
      .given([started, retried(1), retried(2), retried(3)])
      .when(refused())
      .thenEvents([skipped]);
  });

  it('retries every busy code, and none other: that refusal fails the run', () => {
    for (const code of BUSY_VM_CODES)
      spec
        .given([started])
        .when(refused(code))
        .thenEvents([retried(1, { code })]);
    spec.given([started]).when(refused('VM_HAS_PCI_ATTACHED')).thenNothing();
  });

  it('refuses to decide on a VM already left out, or outside a running backup', () => {
    spec.given([started, skipped]).when(refused()).thenThrows('VM_ALREADY_SKIPPED');
    spec.given([]).when(refused()).thenThrows('RUN_NOT_STARTED');
  });

  it('marks the capture and the written record of a partial backup, and only those', () => {
    const given = [started, retried(1), retried(2), retried(3), skipped];
    spec
      .given(given)
      .when({ type: 'RecordCapture', data: capture })
      .thenEvents([{ type: 'BackupPartsCaptured', data: { ...capture, skippedVms: 1 } }]);
    spec
      .given(given)
      .when({ type: 'RecordWritten', data: written })
      .thenEvents([{ type: 'BackupWritten', data: { ...written, skippedVms: 1 } }]);
    // Retried, then exported: whole.
    spec
      .given([started, retried(1)])
      .when({ type: 'RecordWritten', data: written })
      .thenEvents([{ type: 'BackupWritten', data: written }]);
  });
});
