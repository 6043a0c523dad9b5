export {
  type BackupDeps,
  type BackupOptions,
  type BackupResult,
  DEFAULT_KEEP,
  DEFAULT_VDI_SIZE,
  runBackup,
} from './backup.js';
export {
  type BackupListing,
  backupVdiContent,
  backupVdiOf,
  listings,
  resolveSr,
  withRing,
} from './catalogue.js';
export {
  type ConvertDeps,
  type ConvertOptions,
  type ConvertResult,
  KEPT_LEGACY_NAME,
  LEGACY_FORMAT_VERSION,
  type LegacyBackupContent,
  type LegacyReaderPort,
  runConvert,
} from './convert.js';
export { AppError, type AppErrorCode, errorCode } from './errors.js';
export { fmtBytes } from './format.js';
export {
  type Handled,
  type HandleOptions,
  handleCommand,
  interruptRun,
  newRunId,
} from './handle.js';
export {
  chooseLegacyVdi,
  convertRefusal,
  findLegacyVdis,
  type LegacyHow,
  type LegacyListing,
  type LegacyListingSource,
  type LegacyRefused,
  type LegacySearchDeps,
  type LegacySource,
  legacyListing,
  legacyNotes,
  legacyRestoreContent,
} from './legacy-source.js';
export type {
  ArchivePart,
  ArchivePort,
  Attachment,
  DiskPort,
  ExportAll,
  NetworkKey,
  PoolInfo,
  PoolPort,
  Progress,
  RingPort,
  RingRecord,
  SrInfo,
  VdiInfo,
  VmInfo,
} from './ports.js';
export {
  checkFormatVersion,
  decodeLabel,
  decodeSrMeta,
  encodeLabel,
  encodeSrMeta,
  type Label,
  type Manifest,
  PART,
  type SkippedVm,
  type SrMeta,
  type VmMapEntry,
} from './record.js';
export {
  type BackupContent,
  loadBackup,
  type RestoreDeps,
  type RestoreOptions,
  type RestoreResult,
  runRestore,
  type VmOutcome,
} from './restore.js';
export { checkNamedBackupVdi } from './trusted-vdi.js';
export { type PartScanner, verifyRecord } from './verify-record.js';
export { withWritableRing } from './writable-ring.js';
