/** A recorded event: what was appended plus where and when the store put it. */
export interface RecordedEvent<T extends string = string, D = unknown> {
  /** Global position, 1-based, gap-free, in append order. */
  readonly position: number;
  readonly stream: string;
  /** Version within the stream, 0-based. */
  readonly version: number;
  readonly type: T;
  /** ISO 8601 time the store recorded it. */
  readonly at: string;
  readonly data: D;
}

export interface NewEvent {
  readonly type: string;
  readonly data: unknown;
}

/** 'no_stream': the stream must not exist; 'any': no check; a number: its current version. */
export type ExpectedVersion = number | 'no_stream' | 'any';

export interface AppendResult {
  /** The stream's version after the append (pass it as the next expectedVersion). */
  readonly nextExpectedVersion: number;
  readonly lastPosition: number;
}

export interface ReadStreamOptions {
  readonly from?: number;
  readonly direction?: 'forwards' | 'backwards';
  readonly maxCount?: number;
}

export interface Subscription {
  close(): void;
}

/** The event-store port. Implementations run the shared behaviour suite (test-support). */
export interface EventStore {
  appendToStream(
    stream: string,
    events: readonly NewEvent[],
    opts?: { expectedVersion?: ExpectedVersion },
  ): Promise<AppendResult>;
  readStream(stream: string, opts?: ReadStreamOptions): AsyncIterable<RecordedEvent>;
  readAll(opts?: { fromPosition?: number; maxCount?: number }): AsyncIterable<RecordedEvent>;
  /** Catch-up from `fromPosition` (inclusive), then live events as they are appended. */
  subscribe(
    fromPosition: number,
    handler: (e: RecordedEvent) => void | Promise<void>,
  ): Subscription;
  close(): Promise<void>;
}

/** A clock: the domain's only source of time. */
export interface Clock {
  now(): Date;
}

export type EventStoreErrorCode =
  | 'WRONG_EXPECTED_VERSION'
  | 'EVENT_CORRUPT'
  | 'EVENT_UNKNOWN_TYPE'
  | 'STORE_LOCKED'
  | 'STORE_CLOSED'
  | 'STORE_SCHEMA_UNSUPPORTED';

export class EventStoreError extends Error {
  override readonly name: string = 'EventStoreError';
  constructor(
    readonly code: EventStoreErrorCode,
    message: string,
    readonly position?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class ConcurrencyError extends EventStoreError {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly stream: string,
    readonly expected: ExpectedVersion,
    readonly actual: number | 'no_stream',
  ) {
    super(
      'WRONG_EXPECTED_VERSION',
      `stream ${stream}: expected version ${expected}, found ${actual}`,
    );
  }
}

export function checkExpected(
  stream: string,
  expected: ExpectedVersion | undefined,
  head: number,
): void {
  if (expected === undefined || expected === 'any') return;
  if (expected === 'no_stream') {
    if (head !== -1) throw new ConcurrencyError(stream, expected, head);
    return;
  }
  if (expected !== head)
    throw new ConcurrencyError(stream, expected, head === -1 ? 'no_stream' : head);
}

/**
 * Maps the error of opening a LevelDB directory that another process holds (classic-level's
 * LEVEL_LOCKED, possibly wrapped in LEVEL_DATABASE_NOT_OPEN) to STORE_LOCKED, naming the folder.
 */
export function storeOpenError(err: unknown, location: string): Error {
  let e: unknown = err;
  for (let depth = 0; e && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'LEVEL_LOCKED') {
      return new EventStoreError(
        'STORE_LOCKED',
        `the event store ${location} is in use by another xsmeta process; wait for it to finish, or use --state-dir`,
        undefined,
        { cause: err },
      );
    }
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err : new Error(String(err));
}
