import { mkdirSync } from 'node:fs';
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

/** A page of readAll: the lock is let go between pages so writers are not held up by a reader. */
const PAGE = 10_000;

const classic = (location: string) =>
  new ClassicLevel<string, Uint8Array>(location, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
  }) as unknown as EventLevel;

/**
 * The event store that several processes share: classic-level lets one process at a time hold
 * a LevelDB, so each operation opens the folder, does its work, and closes it again. An open
 * refused because another process holds the folder is retried (with a short, growing pause)
 * until `waitMs`, then fails with STORE_LOCKED. Within a process, operations on one folder take
 * turns. An append is durable (LevelDB's write-ahead log, fsync-ed unless `sync: false`) when
 * its promise resolves: the
 * console and a scheduled backup at the same time both record everything.
 */
export class SharedLevelEventStore extends BaseEventStore {
  constructor(
    readonly location: string,
    private readonly opts: SharedStoreOptions = {},
  ) {
    super();
  }

  /** Runs fn with the log open, in this folder's turn, retrying while another process holds it. */
  private withDb<T>(fn: (db: EventLevel) => Promise<T>): Promise<T> {
    const run = async () => {
      mkdirSync(this.location, { recursive: true });
      const deadline = Date.now() + (this.opts.waitMs ?? 30_000);
      let pause = 5;
      for (;;) {
        const db = (this.opts.makeDb ?? classic)(this.location);
        try {
          await openLevel(db, this.opts.location ?? this.location);
        } catch (e) {
          if ((e as EventStoreError).code !== 'STORE_LOCKED' || Date.now() >= deadline) throw e;
          await new Promise((r) => setTimeout(r, pause + Math.random() * pause));
          pause = Math.min(pause * 2, 100);
          continue;
        }
        try {
          return await fn(db);
        } finally {
          await db.close();
        }
      }
    };
    const prev = turns.get(this.location) ?? Promise.resolve();
    const p = prev.then(run, run);
    const settled = p.catch(() => {});
    turns.set(this.location, settled);
    void settled.then(() => {
      if (turns.get(this.location) === settled) turns.delete(this.location);
    });
    return p;
  }

  protected doAppend(
    stream: string,
    events: readonly IdentifiedEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<AppendOutcome> {
    return this.withDb((db) =>
      appendLevel(db, this.opts.clock ?? { now: () => new Date() }, stream, events, expected, {
        ...this.opts,
        sync: this.opts.sync ?? true,
      }),
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

  protected async doClose(): Promise<void> {}
}
