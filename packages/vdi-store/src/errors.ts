/** Stable codes of every error the ring store throws; documented in the README. */
export type RingErrorCode =
  | 'RING_FULL'
  | 'RING_CORRUPT'
  | 'RING_ROOT_LOST'
  | 'RING_NOT_EMPTY'
  | 'RING_EVICTED'
  | 'RING_UNSIGNED'
  | 'RING_BAD_SIGNATURE'
  | 'RING_TRUNCATED'
  | 'RING_VERSION_UNSUPPORTED'
  | 'RING_NOT_FORMATTED'
  | 'RING_FOREIGN'
  | 'RING_IDENTITY_MISMATCH'
  | 'RING_READ_ONLY'
  | 'RING_NOT_FOUND'
  | 'RING_INVALID_ARGUMENT'
  | 'RING_IO';

export class RingError extends Error {
  override readonly name = 'RingError';
  constructor(
    readonly code: RingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type ArchiveErrorCode = 'ARCHIVE_CORRUPT' | 'ARCHIVE_LIMIT' | 'ARCHIVE_TOO_LARGE';

export class ArchiveError extends Error {
  override readonly name = 'ArchiveError';
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
