/**
 * What an event says about where it came from, for correlation: the run, the host and the
 * process (pid and its start time, which tell a reused pid). Free-form beyond these keys.
 */
export interface EventMetadata {
  readonly runId?: string;
  readonly host?: string;
  readonly pid?: number;
  /** When the process started (an opaque token: Linux clock ticks since boot). */
  readonly processStart?: string | null;
  /** This boot of the host (Linux boot_id): a pid of an earlier boot is gone. */
  readonly boot?: string | null;
  readonly [key: string]: unknown;
}

/** A recorded event: what was appended plus where and when the store put it. */
export interface RecordedEvent<T extends string = string, D = unknown> {
  /** Unique in the log: given by the writer (a retried append is a no-op) or by the store. */
  readonly id: string;
  /** Global position, 1-based, gap-free, in append order. */
  readonly position: number;
  readonly stream: string;
  /** Version within the stream, 0-based. */
  readonly version: number;
  readonly type: T;
  /** ISO 8601 time the store recorded it. */
  readonly at: string;
  readonly data: D;
  readonly metadata: EventMetadata;
}

export interface NewEvent {
  readonly type: string;
  readonly data: unknown;
  /**
   * Optional id (1..100 printable ASCII characters). An append whose events' ids are already in
   * the stream, in the same order, is a retry: it returns the first append's result and writes
   * nothing. An id found elsewhere is refused (EVENT_ID_CONFLICT).
   */
  readonly id?: string;
  readonly metadata?: EventMetadata;
}

/** A new event with its id: given by the writer (then checked for a retry) or made by the store. */
export interface IdentifiedEvent extends NewEvent {
  readonly id: string;
  readonly idGiven: boolean;
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
  /** Stops delivery; `done` then resolves with null. */
  close(): void;
  /**
   * Resolves (never rejects) once delivery has stopped: null after close(), or the error that
   * stopped it (the handler threw or rejected, or the catch-up read failed). Nothing is
   * delivered after an error.
   */
  readonly done: Promise<Error | null>;
}

/**
 * The event-store port. Implementations run the shared behaviour suite that
 * `@xsmeta/eventstore-level/test-suite` exports. Stream names: 1..200 characters of
 * `A-Z a-z 0-9 . _ : @ -`, starting with a letter or digit (STREAM_NAME_INVALID otherwise).
 */
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
  | 'STORE_SCHEMA_UNSUPPORTED'
  | 'STREAM_NAME_INVALID'
  | 'EVENT_ID_CONFLICT';

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

const STREAM_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/;

/** Refuses a stream name outside the port's alphabet (so no name is a key prefix of another). */
export function checkStreamName(stream: string): void {
  if (typeof stream !== 'string' || !STREAM_NAME.test(stream))
    throw new EventStoreError(
      'STREAM_NAME_INVALID',
      `bad stream name ${JSON.stringify(stream)}: use 1..200 of A-Z a-z 0-9 . _ : @ -`,
    );
}

const EVENT_ID = /^[\x21-\x7e]{1,100}$/;

/** Refuses an event id that is not 1..100 printable ASCII characters. */
export function checkEventId(id: string): void {
  if (!EVENT_ID.test(id))
    throw new EventStoreError('EVENT_ID_CONFLICT', `bad event id ${JSON.stringify(id)}`);
}

/**
 * Decides what an append with writer-given ids is, given a lookup of the ids already stored:
 * 'new' (none stored), or the stored events when all are, in order, in this stream (a retry).
 * Anything in between is a conflict.
 */
export function idempotentRetry(
  stream: string,
  events: readonly NewEvent[],
  stored: readonly (RecordedEvent | undefined)[],
): 'new' | RecordedEvent[] {
  if (events.length === 0 || stored.every((e) => e === undefined)) return 'new';
  const found = stored.filter((e): e is RecordedEvent => e !== undefined);
  const ordered =
    found.length === events.length &&
    found.every(
      (e, i) => e.stream === stream && (i === 0 || e.version === found[i - 1]!.version + 1),
    );
  if (!ordered)
    throw new EventStoreError(
      'EVENT_ID_CONFLICT',
      `stream ${stream}: some of these event ids are already stored elsewhere or in another order`,
    );
  return found;
}
