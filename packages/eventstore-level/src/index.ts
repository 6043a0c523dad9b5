export {
  type DecodeOptions,
  EVENT_SCHEMA_VERSION,
  type EventLevel,
  LevelEventStore,
  type LevelStoreOptions,
  storeOpenError,
  type Upcaster,
} from './level.js';
export { SharedLevelEventStore, type SharedStoreOptions } from './shared.js';
