export { ConsoleError, type ConsoleErrorCode } from './errors.js';
export { type ConsoleExit, type RunConsoleOptions, runConsole } from './run.js';
export type {
  BackupChoice,
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
  RingUsage,
  ScheduleStatus,
  SrChoice,
  VmOutcome,
} from './services.js';
