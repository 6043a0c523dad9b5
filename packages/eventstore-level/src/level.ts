import {
  type AppendOutcome,
  BaseEventStore,
  type Clock,
  checkExpected,
  checkStreamName,
  type EventMetadata,
  EventStoreError,
  type ExpectedVersion,
  type IdentifiedEvent,
  idempotentRetry,
  type ReadStreamOptions,
  type RecordedEvent,
} from '@xsmeta/core';
import type { AbstractLevel } from 'abstract-level';
import { Packr } from 'msgpackr';

/** The schema of the key layout and of stored events that this build writes. */
export const EVENT_SCHEMA_VERSION = 1;

/** The LevelDB the store runs on: string keys, binary values (ClassicLevel or MemoryLevel). */
export type EventLevel = AbstractLevel<string | Uint8Array, string, Uint8Array>;

/**
 * Upgrades an event stored under an older schema to the current shape. Register one per
 * (type, from-schema) when an event's data changes; read paths apply them in order.
 */
export type Upcaster = (data: unknown) => unknown;

/** How stored events are read back. */
export interface DecodeOptions {
  /**
   * Appends wait for the operating system to put the write-ahead log on disk (fsync), so an
   * append that returned survives a power cut, not only a killed process.
   */
  readonly sync?: boolean | undefined;
  /** The event types the reader knows; another type read from the log is EVENT_UNKNOWN_TYPE. */
  readonly knownTypes?: ReadonlySet<string> | undefined;
  readonly upcasters?: Readonly<Record<string, Upcaster>> | undefined;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const POS_W = 16;
const VER_W = 10;
const posKey = (p: number) => `e!${pad(p, POS_W)}`;

/*
 * Key layout (all keys UTF-8 strings, values msgpack):
 * - `!meta!schema`          -> schema version (number)
 * - `!meta!last`            -> last global position (number)
 * - `e!<position:16>`       -> { i: id, s: stream, v: version, t: type, a: at, d: data,
 *                                m: metadata, x: schema }
 * - `s!<stream>!<ver:10>`   -> position (number)
 * - `h!<stream>`            -> head version of the stream (number)
 * - `i!<id>`                -> position (number), for ids the writer gave (the store's own
 *                              are random UUIDs: no look-up needed)
 * Stream names never hold `!` (the port's alphabet), so `s!a!` is no prefix of stream `a!b`'s
 * keys. One append is one atomic batch: its events, their stream and id index entries, the
 * head and `last`. Events written before ids existed read back with id `p<position>`.
 */

async function getNumber(db: EventLevel, key: string): Promise<number | undefined> {
  const v = await db.get(key);
  return v === undefined ? undefined : (packr.unpack(v) as number);
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

/** Opens a LevelDB for the store: maps a held lock, writes or checks the schema version. */
export async function openLevel(db: EventLevel, location: string): Promise<void> {
  try {
    await db.open();
  } catch (err) {
    throw storeOpenError(err, location);
  }
  const schema = await getNumber(db, '!meta!schema');
  if (schema === undefined) {
    await db.batch([{ type: 'put', key: '!meta!schema', value: packr.pack(EVENT_SCHEMA_VERSION) }]);
  } else if (schema > EVENT_SCHEMA_VERSION) {
    await db.close();
    throw new EventStoreError(
      'STORE_SCHEMA_UNSUPPORTED',
      `the event store was written by a newer xsmeta (schema ${schema}; this one reads up to ${EVENT_SCHEMA_VERSION})`,
    );
  }
}

function decode(position: number, value: Uint8Array, opts: DecodeOptions): RecordedEvent {
  let raw: {
    i?: unknown;
    s?: unknown;
    v?: unknown;
    t?: unknown;
    a?: unknown;
    d?: unknown;
    m?: unknown;
    x?: unknown;
  };
  try {
    raw = packr.unpack(value) as typeof raw;
  } catch (cause) {
    throw new EventStoreError(
      'EVENT_CORRUPT',
      `event at position ${position} cannot be decoded`,
      position,
      { cause },
    );
  }
  if (
    !raw ||
    typeof raw !== 'object' ||
    typeof raw.s !== 'string' ||
    typeof raw.v !== 'number' ||
    typeof raw.t !== 'string' ||
    typeof raw.a !== 'string' ||
    typeof raw.x !== 'number' ||
    (raw.i !== undefined && typeof raw.i !== 'string') ||
    (raw.m !== undefined && (typeof raw.m !== 'object' || raw.m === null))
  ) {
    throw new EventStoreError(
      'EVENT_CORRUPT',
      `event at position ${position} has a bad shape`,
      position,
    );
  }
  if (opts.knownTypes && !opts.knownTypes.has(raw.t)) {
    throw new EventStoreError(
      'EVENT_UNKNOWN_TYPE',
      `event at position ${position} has unknown type ${raw.t}`,
      position,
    );
  }
  if (raw.x > EVENT_SCHEMA_VERSION) {
    throw new EventStoreError(
      'STORE_SCHEMA_UNSUPPORTED',
      `event at position ${position} uses schema ${raw.x}`,
      position,
    );
  }
  let data = raw.d;
  for (let x = raw.x; x < EVENT_SCHEMA_VERSION; x++) {
    const up = opts.upcasters?.[`${raw.t}@${x}`];
    if (up) data = up(data);
  }
  return {
    id: (raw.i as string | undefined) ?? `p${position}`,
    position,
    stream: raw.s,
    version: raw.v,
    type: raw.t,
    at: raw.a,
    data,
    metadata: (raw.m as EventMetadata | undefined) ?? {},
  };
}

async function readAt(
  db: EventLevel,
  position: number,
  opts: DecodeOptions,
): Promise<RecordedEvent | undefined> {
  const v = await db.get(posKey(position));
  return v === undefined ? undefined : decode(position, v, opts);
}

/**
 * What a process that holds the LevelDB alone may remember between appends: the last position
 * and stream heads (a shared log is re-read on every append instead).
 */
export interface HeadCache {
  last: number | undefined;
  readonly heads: Map<string, number>;
}

/** One append as one atomic batch over an opened LevelDB (see the key layout above). */
export async function appendLevel(
  db: EventLevel,
  clock: Clock,
  stream: string,
  events: readonly IdentifiedEvent[],
  expected: ExpectedVersion | undefined,
  opts: DecodeOptions = {},
  cache?: HeadCache,
): Promise<AppendOutcome> {
  const stored = await Promise.all(
    events.map(async (e) => {
      if (!e.idGiven) return undefined;
      const p = await getNumber(db, `i!${e.id}`);
      return p === undefined ? undefined : readAt(db, p, opts);
    }),
  );
  const retry = idempotentRetry(stream, events, stored);
  if (retry !== 'new') {
    const last = retry[retry.length - 1]!;
    return {
      recorded: [],
      result: { nextExpectedVersion: last.version, lastPosition: last.position },
    };
  }
  const head = cache?.heads.get(stream) ?? (await getNumber(db, `h!${stream}`)) ?? -1;
  checkExpected(stream, expected, head);
  if (events.length === 0)
    return { recorded: [], result: { nextExpectedVersion: head, lastPosition: 0 } };
  const lastPos = cache?.last ?? (await getNumber(db, '!meta!last')) ?? 0;
  const at = clock.now().toISOString();
  const ops: { type: 'put'; key: string; value: Uint8Array }[] = [];
  const recorded: RecordedEvent[] = events.map((e, i) => {
    const position = lastPos + i + 1;
    const version = head + i + 1;
    const metadata = e.metadata ?? {};
    ops.push({
      type: 'put',
      key: posKey(position),
      value: packr.pack({
        i: e.id,
        s: stream,
        v: version,
        t: e.type,
        a: at,
        d: e.data,
        m: metadata,
        x: EVENT_SCHEMA_VERSION,
      }),
    });
    ops.push({
      type: 'put',
      key: `s!${stream}!${pad(version, VER_W)}`,
      value: packr.pack(position),
    });
    if (e.idGiven) ops.push({ type: 'put', key: `i!${e.id}`, value: packr.pack(position) });
    return { id: e.id, position, stream, version, type: e.type, at, data: e.data, metadata };
  });
  const last = recorded[recorded.length - 1]!;
  ops.push({ type: 'put', key: `h!${stream}`, value: packr.pack(last.version) });
  ops.push({ type: 'put', key: '!meta!last', value: packr.pack(last.position) });
  // classic-level takes `sync` (fsync the write-ahead log); other LevelDBs ignore it.
  await db.batch(ops, { sync: opts.sync ?? false } as { keyEncoding?: string });
  if (cache) {
    cache.last = last.position;
    if (cache.heads.size > 10_000) cache.heads.clear();
    cache.heads.set(stream, last.version);
  }
  return {
    recorded,
    result: { nextExpectedVersion: last.version, lastPosition: last.position },
  };
}

/** Every event from a position, in order; a missing position is a gap (EVENT_CORRUPT). */
export async function* readAllLevel(
  db: EventLevel,
  from: number,
  maxCount: number | undefined,
  opts: DecodeOptions,
): AsyncIterable<RecordedEvent> {
  let expect = Math.max(1, from);
  for await (const [key, value] of db.iterator({
    gte: posKey(expect),
    lt: 'e"',
    limit: maxCount ?? -1,
  })) {
    const position = Number(key.slice(2));
    if (position !== expect)
      throw new EventStoreError(
        'EVENT_CORRUPT',
        `event log has a gap at position ${expect}`,
        expect,
      );
    expect++;
    yield decode(position, value, opts);
  }
}

/** One stream's events; backwards from past the end starts at its last event. */
export async function* readStreamLevel(
  db: EventLevel,
  stream: string,
  ro: ReadStreamOptions,
  opts: DecodeOptions,
): AsyncIterable<RecordedEvent> {
  checkStreamName(stream);
  const back = ro.direction === 'backwards';
  const prefix = `s!${stream}!`;
  const range = back
    ? {
        gte: prefix,
        lte: ro.from !== undefined ? `${prefix}${pad(Math.max(0, ro.from), VER_W)}` : `${prefix}~`,
        reverse: true,
      }
    : { gte: `${prefix}${pad(Math.max(0, ro.from ?? 0), VER_W)}`, lt: `${prefix}~` };
  for await (const [, value] of db.iterator({ ...range, limit: ro.maxCount ?? -1 })) {
    const position = packr.unpack(value) as number;
    const e = await readAt(db, position, opts);
    if (e === undefined)
      throw new EventStoreError(
        'EVENT_CORRUPT',
        `stream ${stream} points at missing position ${position}`,
        position,
      );
    yield e;
  }
}

export interface LevelStoreOptions extends DecodeOptions {
  readonly clock?: Clock | undefined;
  /** Named in errors (the folder of a ClassicLevel). */
  readonly location?: string | undefined;
}

/**
 * The event store on a LevelDB this process holds open for as long as it lives (tests,
 * benchmarks, one long-lived writer). Processes that share a log use SharedLevelEventStore.
 */
export class LevelEventStore extends BaseEventStore {
  private readonly cache: HeadCache = { last: undefined, heads: new Map() };
  private constructor(
    private readonly db: EventLevel,
    private readonly opts: LevelStoreOptions,
  ) {
    super();
  }

  /** Opens (and initialises) the store over an opened or unopened LevelDB instance. */
  static async open(db: EventLevel, opts: LevelStoreOptions = {}): Promise<LevelEventStore> {
    await openLevel(db, opts.location ?? 'database');
    return new LevelEventStore(db, opts);
  }

  protected doAppend(
    stream: string,
    events: readonly IdentifiedEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<AppendOutcome> {
    return appendLevel(
      this.db,
      this.opts.clock ?? { now: () => new Date() },
      stream,
      events,
      expected,
      this.opts,
      this.cache,
    );
  }

  async *readAll(
    opts: { fromPosition?: number; maxCount?: number } = {},
  ): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    yield* readAllLevel(this.db, opts.fromPosition ?? 1, opts.maxCount, this.opts);
  }

  async *readStream(stream: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    yield* readStreamLevel(this.db, stream, opts, this.opts);
  }

  protected async doClose(): Promise<void> {
    await this.db.close();
  }
}
