import type { AbstractLevel } from 'abstract-level';
import { Packr } from 'msgpackr';
import { KNOWN_EVENT_TYPES } from '../events/index.js';
import { BaseEventStore } from './base.js';
import type {
  Clock,
  ExpectedVersion,
  NewEvent,
  ReadStreamOptions,
  RecordedEvent,
} from './types.js';
import { checkExpected, EventStoreError, storeOpenError } from './types.js';

/** The schema of the key layout and of stored events that this build writes. */
export const EVENT_SCHEMA_VERSION = 1;

/** The LevelDB the store runs on: string keys, binary values (ClassicLevel or MemoryLevel). */
export type EventLevel = AbstractLevel<string | Uint8Array, string, Uint8Array>;

/**
 * Upgrades an event stored under an older schema to the current shape. Register one per
 * (type, from-schema) when an event's data changes; read paths apply them in order.
 */
export type Upcaster = (data: unknown) => unknown;

const packr = new Packr({ useRecords: false, moreTypes: false });
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const POS_W = 16;
const VER_W = 10;

/**
 * Key layout (all keys UTF-8 strings, values msgpack):
 * - `!meta!schema`          -> schema version (number)
 * - `!meta!last`            -> last global position (number)
 * - `e!<position:16>`       -> { s: stream, v: version, t: type, a: at, d: data, x: schema }
 * - `s!<stream>!<ver:10>`   -> position (number)
 * - `h!<stream>`            -> head version of the stream (number)
 * One append is one atomic batch: its events, their stream index entries, the head and `last`.
 */
export class LevelEventStore extends BaseEventStore {
  private last = 0;

  private constructor(
    private readonly db: EventLevel,
    private readonly clock: Clock,
    private readonly opts: { strictTypes: boolean; upcasters: Map<string, Upcaster> },
  ) {
    super();
  }

  /** Opens (and initialises) the store over an opened or unopened LevelDB instance. */
  static async open(
    db: EventLevel,
    opts: {
      clock?: Clock;
      location?: string;
      strictTypes?: boolean;
      upcasters?: Record<string, Upcaster>;
    } = {},
  ): Promise<LevelEventStore> {
    try {
      await db.open();
    } catch (err) {
      throw storeOpenError(err, opts.location ?? 'database');
    }
    const store = new LevelEventStore(db, opts.clock ?? { now: () => new Date() }, {
      strictTypes: opts.strictTypes ?? true,
      upcasters: new Map(Object.entries(opts.upcasters ?? {})),
    });
    const schema = await store.getNumber('!meta!schema');
    if (schema === undefined) {
      await db.batch([
        { type: 'put', key: '!meta!schema', value: packr.pack(EVENT_SCHEMA_VERSION) },
      ]);
    } else if (schema > EVENT_SCHEMA_VERSION) {
      throw new EventStoreError(
        'STORE_SCHEMA_UNSUPPORTED',
        `the event store was written by a newer xsmeta (schema ${schema}; this one reads up to ${EVENT_SCHEMA_VERSION})`,
      );
    }
    store.last = (await store.getNumber('!meta!last')) ?? 0;
    return store;
  }

  private async getNumber(key: string): Promise<number | undefined> {
    const v = await this.db.get(key);
    return v === undefined ? undefined : (packr.unpack(v) as number);
  }

  /** Stream heads seen by this process (appends are serialised, and the LevelDB is ours alone). */
  private readonly heads = new Map<string, number>();

  protected async headOf(stream: string): Promise<number> {
    const known = this.heads.get(stream);
    if (known !== undefined) return known;
    const head = (await this.getNumber(`h!${stream}`)) ?? -1;
    if (this.heads.size > 10_000) this.heads.clear();
    this.heads.set(stream, head);
    return head;
  }

  protected async doAppend(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<RecordedEvent[]> {
    const head = await this.headOf(stream);
    checkExpected(stream, expected, head);
    if (events.length === 0) return [];
    const at = this.clock.now().toISOString();
    const ops: { type: 'put'; key: string; value: Uint8Array }[] = [];
    const recorded: RecordedEvent[] = [];
    events.forEach((e, i) => {
      const position = this.last + i + 1;
      const version = head + i + 1;
      ops.push({
        type: 'put',
        key: `e!${pad(position, POS_W)}`,
        value: packr.pack({
          s: stream,
          v: version,
          t: e.type,
          a: at,
          d: e.data,
          x: EVENT_SCHEMA_VERSION,
        }),
      });
      ops.push({
        type: 'put',
        key: `s!${stream}!${pad(version, VER_W)}`,
        value: packr.pack(position),
      });
      recorded.push({ position, stream, version, type: e.type, at, data: e.data });
    });
    const lastRec = recorded[recorded.length - 1]!;
    ops.push({ type: 'put', key: `h!${stream}`, value: packr.pack(lastRec.version) });
    ops.push({ type: 'put', key: '!meta!last', value: packr.pack(lastRec.position) });
    await this.db.batch(ops);
    this.last = lastRec.position;
    this.heads.set(stream, lastRec.version);
    return recorded;
  }

  private decode(position: number, value: Uint8Array): RecordedEvent {
    let raw: { s?: unknown; v?: unknown; t?: unknown; a?: unknown; d?: unknown; x?: unknown };
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
      typeof raw.x !== 'number'
    ) {
      throw new EventStoreError(
        'EVENT_CORRUPT',
        `event at position ${position} has a bad shape`,
        position,
      );
    }
    if (this.opts.strictTypes && !KNOWN_EVENT_TYPES.has(raw.t)) {
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
      const up = this.opts.upcasters.get(`${raw.t}@${x}`);
      if (up) data = up(data);
    }
    return { position, stream: raw.s, version: raw.v, type: raw.t, at: raw.a, data };
  }

  async *readAll(
    opts: { fromPosition?: number; maxCount?: number } = {},
  ): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    const from = Math.max(1, opts.fromPosition ?? 1);
    let expect = from;
    for await (const [key, value] of this.db.iterator({
      gte: `e!${pad(from, POS_W)}`,
      lt: 'e"',
      limit: opts.maxCount ?? -1,
    })) {
      const position = Number(key.slice(2));
      if (position !== expect)
        throw new EventStoreError(
          'EVENT_CORRUPT',
          `event log has a gap at position ${expect}`,
          expect,
        );
      expect++;
      yield this.decode(position, value);
    }
  }

  async *readStream(stream: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    const back = opts.direction === 'backwards';
    const prefix = `s!${stream}!`;
    const range = back
      ? {
          gte: prefix,
          lte: opts.from !== undefined ? `${prefix}${pad(opts.from, VER_W)}` : `${prefix}~`,
          reverse: true,
        }
      : { gte: `${prefix}${pad(opts.from ?? 0, VER_W)}`, lt: `${prefix}~` };
    for await (const [, value] of this.db.iterator({ ...range, limit: opts.maxCount ?? -1 })) {
      const position = packr.unpack(value) as number;
      const raw = await this.db.get(`e!${pad(position, POS_W)}`);
      if (raw === undefined)
        throw new EventStoreError(
          'EVENT_CORRUPT',
          `stream ${stream} points at missing position ${position}`,
          position,
        );
      yield this.decode(position, raw);
    }
  }

  protected async doClose(): Promise<void> {
    await this.db.close();
  }
}
