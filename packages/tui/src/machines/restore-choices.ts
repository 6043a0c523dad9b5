/**
 * What a restore in the console chooses from: the backups (of either variant) as points, and
 * the six ways to restore one. The restore dialog's machine (restore.ts) walks through them.
 */
import type { BackupChoice, LegacyBackupChoice, RestoreMode } from '../services.js';

/** A backup to restore from, of either variant. */
export interface RestorePoint {
  /** `YYYY-MM-DD-HH-MM-SS`. */
  readonly date: string;
  readonly vmCount: number;
  /** The ring's sequence number; null for a legacy backup (named by its date). */
  readonly seq: number | null;
  readonly templateCount: number | null;
  readonly storedBytes: number | null;
  readonly verified: boolean | null;
  readonly damaged: string | null;
}

export function pointFromBackup(b: BackupChoice): RestorePoint {
  return {
    date: b.date,
    vmCount: b.vmCount,
    seq: b.seq,
    templateCount: b.templateCount,
    storedBytes: b.storedBytes,
    verified: b.verified,
    damaged: b.damaged ?? null,
  };
}

export function pointFromLegacy(b: LegacyBackupChoice): RestorePoint {
  return {
    date: b.date,
    vmCount: b.vmCount,
    seq: null,
    templateCount: null,
    storedBytes: null,
    verified: null,
    damaged: b.damaged ?? null,
  };
}

/**
 * xsconsole's four choices, in its order, then the two that replace VMs already in the pool
 * (`xe-restore-metadata -f`, vm-import's force), which xsconsole lacks.
 */
export const RESTORE_CHOICES: readonly {
  readonly label: string;
  readonly mode: RestoreMode;
  readonly dryRun: boolean;
  readonly force: boolean;
}[] = [
  { label: 'Only VMs on This SR', mode: 'sr', dryRun: false, force: false },
  { label: 'All VM Metadata', mode: 'all', dryRun: false, force: false },
  { label: 'Only VMs on This SR (Dry Run)', mode: 'sr', dryRun: true, force: false },
  { label: 'All VM Metadata (Dry Run)', mode: 'all', dryRun: true, force: false },
  { label: 'Only VMs on This SR, Replacing Existing VMs', mode: 'sr', dryRun: false, force: true },
  { label: 'All VM Metadata, Replacing Existing VMs', mode: 'all', dryRun: false, force: true },
];
