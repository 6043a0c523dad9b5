export {
  type ArchiveLimits,
  type ArchivePart,
  type ArchiveSummary,
  RECORD_LIMITS,
  type ReadOptions,
  readArchive,
  scanArchive,
  writeArchive,
} from './archive.js';
export { type BlockDevice, openFileDevice } from './device.js';
export { ArchiveError, type ArchiveErrorCode, RingError, type RingErrorCode } from './errors.js';
export { MemoryDevice, type SectorFate, SimulatedCrash } from './memory-device.js';
export { RING_FORMAT_VERSION } from './ring/layout.js';
export type { RingKeys } from './ring/signing.js';
export type {
  RecordCheck,
  RecordInfo,
  RepairReport,
  RingStatus,
  RingUsage,
  VerifyReport,
} from './ring/types.js';
export { Ring } from './ring.js';
