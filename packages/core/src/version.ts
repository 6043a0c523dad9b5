/** The version of the backup format this build writes; older ones always restore. */
export const BACKUP_FORMAT_VERSION = 1;

/** This tool's version, recorded in every backup. */
export const TOOL_VERSION = '0.1.0';
