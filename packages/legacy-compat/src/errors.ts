export type LegacyErrorCode =
  | 'LEGACY_NOT_EXT'
  | 'LEGACY_NO_MARKER'
  | 'LEGACY_NO_BACKUP'
  | 'LEGACY_CORRUPT'
  | 'LEGACY_LIMIT'
  | 'LEGACY_TIMEOUT'
  | 'LEGACY_UNSUPPORTED';

export class LegacyError extends Error {
  override readonly name = 'LegacyError';
  constructor(
    readonly code: LegacyErrorCode,
    message: string,
  ) {
    super(message);
  }
}
