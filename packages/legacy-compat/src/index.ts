export { LegacyError, type LegacyErrorCode } from './errors.js';
export type { ExtLimits, ReadOnlyDevice } from './ext.js';
export {
  type LegacyBackup,
  type LegacyDisk,
  type LegacyLimits,
  openImage,
  openLegacyDisk,
  type PoolDb,
} from './layout.js';
