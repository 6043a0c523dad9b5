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
export {
  type RecordCheck,
  type RecordInfo,
  type RepairReport,
  RING_FORMAT_VERSION,
  Ring,
  type RingKeys,
  type RingStatus,
  type RingUsage,
  type VerifyReport,
} from './ring.js';
