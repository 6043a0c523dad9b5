/** The version of the backup format this build writes; older ones always restore. */
export const BACKUP_FORMAT_VERSION = 1;
