/**
 * `@xsmeta/core/catalogue`: what reading the backups on an SR needs (`xsmeta list`, `verify`,
 * and the composition root that opens a ring read-only), without the rest of core. A command
 * that only lists or verifies imports this entry, so it does not load the deciders, projections,
 * event store, restore or convert modules that `@xsmeta/core` re-exports (issue 19's start-up:
 * each module costs the ESM loader a resolve, a stat and a read). Everything here is also
 * exported by `@xsmeta/core` itself; the two are the same functions.
 */

export { type BackupListing, backupVdiOf, listings, resolveSr, withRing } from './app/catalogue.js';
export { AppError, type AppErrorCode, errorCode } from './app/errors.js';
export { fmtBytes } from './app/format.js';
export { verifyRecord } from './app/verify-record.js';
