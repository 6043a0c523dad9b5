/** The version of the backup format this build writes; older ones always restore. */
export const BACKUP_FORMAT_VERSION = 1;

/**
 * This tool's version, recorded in every backup. Core reads no files, so it is written here;
 * test/version.test.ts fails when it differs from core's or the CLI's package.json version.
 */
export const TOOL_VERSION = '0.1.0';
