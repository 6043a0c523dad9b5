/** Errors of the use-cases, with stable codes; the CLI maps them to exit codes. */
export type AppErrorCode =
  | 'BACKUP_VDI_MISSING'
  | 'NO_DEFAULT_SR'
  | 'SR_NOT_FOUND'
  | 'BACKUP_TOO_LARGE'
  | 'NO_BACKUPS'
  | 'BACKUP_NOT_FOUND'
  | 'BACKUP_DAMAGED'
  | 'BACKUP_FORMAT_UNSUPPORTED'
  | 'BACKUP_INVALID'
  | 'UNTRUSTED_VDI'
  | 'LEGACY_ON_BACKUP_VDI'
  | 'CONVERT_REFUSED'
  | 'CONVERT_INTERRUPTED';

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly code: AppErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The code of any typed error (ours, the ring's, XAPI's), else undefined. */
export function errorCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

/**
 * The backup VDI holds an ext3 filesystem: what upstream's xe-backup-metadata writes to the
 * same deterministic VDI. It is never formatted unasked: that would destroy those backups.
 */
export function legacyOnBackupVdi(id: { vdiUuid: string; srUuid: string }, cause: unknown) {
  return new AppError(
    'LEGACY_ON_BACKUP_VDI',
    `the backup VDI ${id.vdiUuid} holds backups of the old xe-backup-metadata (ext3): convert them with 'xsmeta legacy convert --sr ${id.srUuid}' (or restore with xe-restore-metadata -o), or re-initialise with -i, which destroys them`,
    { cause },
  );
}
