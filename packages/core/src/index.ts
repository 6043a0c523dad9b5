export * from './app/index.js';
export { backupDate, parseBackupDate } from './domain/backup-date.js';
export { type Decider, DomainError, type DomainErrorCode, fold } from './domain/decider.js';
export {
  type BackupVdiContent,
  chooseLegacyCandidate,
  type LegacyAccess,
  type LegacyRefusal,
  legacyAccess,
} from './domain/legacy.js';
export {
  type CatalogueEntry,
  catalogueProjection,
  type HistoryEntry,
  historyProjection,
  type LastResult,
  lastResultProjection,
  type Projection,
  rebuild,
  type ScheduleView,
  scheduleProjection,
  scheduleSummary,
} from './domain/projections.js';
export { chooseSr, type RingFound, ringAction, type SrChoice } from './domain/rules.js';
export {
  RUN_HISTORY_VERSION,
  type RunHistoryState,
  type RunKind,
  type RunOutcome,
  type RunOwner,
  type RunSummary,
  runHistory,
  runHistoryProjection,
} from './domain/run-history.js';
export {
  type BackupCommand,
  type BackupRunState,
  BUSY_VM_CODES,
  backupDecider,
  type ConvertCommand,
  type ConvertRunState,
  chooseConvertDates,
  convertDecider,
  EXPORT_RETRY_DELAYS_MS,
  type LeftOutVm,
  type RestoreCommand,
  type RestoreRunState,
  restoreDecider,
  restoreSummaryLine,
} from './domain/runs.js';
export {
  dueSlot,
  FREQUENCIES,
  latestSlot,
  nextSlot,
  parseFrequency,
  type ScheduleCommand,
  type ScheduleState,
  scheduleDecider,
  type UtcOffset,
} from './domain/schedule.js';
export { escapeStrings, escapeText } from './domain/text.js';
export * from './events/index.js';
export { type AppendOutcome, BaseEventStore } from './store/base.js';
export { MemoryEventStore } from './store/memory.js';
export * from './store/types.js';
export { BACKUP_FORMAT_VERSION, TOOL_VERSION } from './version.js';
