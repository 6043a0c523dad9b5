import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  type AppendOutcome,
  BaseEventStore,
  type EventStoreError,
  type ExpectedVersion,
  type IdentifiedEvent,
  type ReadStreamOptions,
  type RecordedEvent,
} from '@xsmeta/core';
import { ClassicLevel } from 'classic-level';
import {
  appendLevel,
  type EventLevel,
  type HeadCache,
  type LevelStoreOptions,
  openLevel,
  readAllLevel,
  readStreamLevel,
} from './level.js';

export interface SharedStoreOptions extends LevelStoreOptions {
  /** How long one operation waits for another process to let go of the log (default 30 s). */
  readonly waitMs?: number | undefined;
  /** The LevelDB to open for each operation (default: a ClassicLevel on the folder). */
  readonly makeDb?: ((location: string) => EventLevel) | undefined;
}

/** Per folder, this process's operations one after another (LevelDB's lock is per process too). */
const turns = new Map<string, Promise<unknown>>();

/**
 * Per folder, the LevelDB this process holds between operations: kept open for up to LINGER_MS
 * after the last one (a run's steps come in bursts, a restore's every few milliseconds to
 * seconds apart), looking for a knock every KNOCK_POLL_MS meanwhile, and let go at once when
 * another process has knocked (see `knockFile`), after which this process waits HANDOVER_MS
 * before it opens again, so that the knocking process, which retries at most every 200 ms,
 * gets its turn.
 */
interface Held {
  db: EventLevel | null;
  idle: ReturnType<typeof setTimeout> | null;
  quietUntil: number;
  /**
   * The last position and stream heads, remembered while this process holds the LevelDB
   * (LevelDB's lock keeps every other process out meanwhile) and forgotten when it lets go:
   * an append in a burst reads neither back.
   */
  heads: HeadCache | null;
}
const held = new Map<string, Held>();
const LINGER_MS = 1000;
const KNOCK_POLL_MS = 50;
const HANDOVER_MS = 300;

/** The file a process waiting for the folder creates beside it: "let go, please". */
const knockFile = (location: string) => `${location}.waiting`;

/** Whether a process waits for the folder (a knock left by a process now gone is removed). */
function knocked(location: string): boolean {
  let text: string;
  try {
    text = readFileSync(knockFile(location), 'utf8');
  } catch {
    return false;
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPERM') return true;
    rmSync(knockFile(location), { force: true });
    return false;
  }
}

/** A page of readAll: the lock is let go between pages so writers are not held up by a reader. */
const PAGE = 10_000;

const classic = (location: string) =>
  new ClassicLevel<string, Uint8Array>(location, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
  }) as unknown as EventLevel;

/**
 * The event store that several processes share. classic-level lets one process at a time hold
 * a LevelDB: an operation opens the folder (or uses it while this process still holds it from
 * the last one, up to LINGER_MS), and a process that finds it held knocks (a `.waiting` file
 * beside the folder) and retries with a short, growing pause until `waitMs`, then fails with
 * STORE_LOCKED; the holder lets go at its next operation or when idle. Within a process,
 * operations on one folder take turns. An append is durable (LevelDB's write-ahead log,
 * fsync-ed unless `sync: false`) when its promise resolves: the console and a scheduled backup
 * at the same time both record everything.
 */
export class SharedLevelEventStore extends BaseEventStore {
  constructor(
    readonly location: string,
    private readonly opts: SharedStoreOptions = {},
  ) {
    super();
  }

  private held(): Held {
    let h = held.get(this.location);
    if (!h) {
      h = { db: null, idle: null, quietUntil: 0, heads: null };
      held.set(this.location, h);
    }
    return h;
  }

  /** Opens the folder, knocking and retrying while another process holds it (up to waitMs). */
  private async acquire(h: Held): Promise<EventLevel> {
    mkdirSync(this.location, { recursive: true });
    const deadline = Date.now() + (this.opts.waitMs ?? 30_000);
    const wait = h.quietUntil - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    let pause = 5;
    let knocked = false;
    for (;;) {
      const db = (this.opts.makeDb ?? classic)(this.location);
      try {
        await openLevel(db, this.opts.location ?? this.location);
        if (knocked) rmSync(knockFile(this.location), { force: true });
        return db;
      } catch (e) {
        if ((e as EventStoreError).code !== 'STORE_LOCKED' || Date.now() >= deadline) {
          if (knocked) rmSync(knockFile(this.location), { force: true });
          throw e;
        }
        try {
          writeFileSync(knockFile(this.location), `${process.pid}\n`);
          knocked = true;
        } catch {
          // A read-only parent folder: wait without knocking (the holder lets go when idle).
        }
        await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
        pause = Math.min(pause * 2, 100);
      }
    }
  }

  /** Closes the held LevelDB (in this folder's turn). */
  private release(h: Held): Promise<void> {
    return this.inTurn(async () => {
      if (h.idle) clearTimeout(h.idle);
      h.idle = null;
      const db = h.db;
      h.db = null;
      h.heads = null;
      await db?.close();
    });
  }

  /** Runs fn in this folder's turn within this process. */
  private inTurn<T>(run: () => Promise<T>): Promise<T> {
    const prev = turns.get(this.location) ?? Promise.resolve();
    const p = prev.then(run, run);
    const settled = p.catch(() => {});
    turns.set(this.location, settled);
    void settled.then(() => {
      if (turns.get(this.location) === settled) turns.delete(this.location);
    });
    return p;
  }

  /** Runs fn with the log open, in this folder's turn, retrying while another process holds it. */
  private withDb<T>(fn: (db: EventLevel, heads: HeadCache) => Promise<T>): Promise<T> {
    return this.inTurn(async () => {
      const h = this.held();
      if (h.idle) clearTimeout(h.idle);
      h.idle = null;
      // Another process is waiting: let go now, and give it time to get in.
      if (h.db && knocked(this.location)) {
        const db = h.db;
        h.db = null;
        h.heads = null;
        await db.close();
        h.quietUntil = Date.now() + HANDOVER_MS;
      }
      if (!h.db) {
        h.heads = null;
        h.db = await this.acquire(h);
        h.heads = { last: undefined, heads: new Map() };
      }
      try {
        return await fn(h.db, h.heads!);
      } finally {
        const idleSince = Date.now();
        const tick = () => {
          h.idle = null;
          if (Date.now() - idleSince >= LINGER_MS || knocked(this.location)) {
            void this.release(h);
            return;
          }
          h.idle = setTimeout(tick, KNOCK_POLL_MS);
          h.idle.unref?.();
        };
        h.idle = setTimeout(tick, KNOCK_POLL_MS);
        h.idle.unref?.();
      }
    });
  }

  protected doAppend(
    stream: string,
    events: readonly IdentifiedEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<AppendOutcome> {
    return this.withDb((db, heads) =>
      appendLevel(
        db,
        this.opts.clock ?? { now: () => new Date() },
        stream,
        events,
        expected,
        { ...this.opts, sync: this.opts.sync ?? true },
        heads,
      ),
    );
  }

  async *readAll(
    opts: { fromPosition?: number; maxCount?: number } = {},
  ): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    let from = Math.max(1, opts.fromPosition ?? 1);
    let left = opts.maxCount ?? Number.POSITIVE_INFINITY;
    while (left > 0) {
      const n = Math.min(PAGE, left);
      const page = await this.withDb(async (db) => {
        const out: RecordedEvent[] = [];
        for await (const e of readAllLevel(db, from, n, this.opts)) out.push(e);
        return out;
      });
      yield* page;
      if (page.length < n) return;
      from += page.length;
      left -= page.length;
    }
  }

  async *readStream(stream: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    const all = await this.withDb(async (db) => {
      const out: RecordedEvent[] = [];
      for await (const e of readStreamLevel(db, stream, opts, this.opts)) out.push(e);
      return out;
    });
    yield* all;
  }

  /** Lets go of the folder now (instead of after the linger) for this process. */
  protected async doClose(): Promise<void> {
    await this.release(this.held());
  }
}
