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
  | 'UNTRUSTED_VDI';

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
