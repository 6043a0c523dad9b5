import { join } from 'node:path';
import {
  type AppendResult,
  ConcurrencyError,
  type EventMetadata,
  type EventStore,
  type ExpectedVersion,
  errorCode,
  interruptRun,
  KNOWN_EVENT_TYPES,
  MemoryEventStore,
  type NewEvent,
  type ReadStreamOptions,
  type RecordedEvent,
  type Subscription,
} from '@xsmeta/core';
import { withCode } from '../output.js';
import { myOwner, parseOwner } from '../process/owner.js';
import { onCleanup, signalReceived } from '../process/signals.js';

/**
 * The event log of this machine: `<state-dir>/events`, a LevelDB that every xsmeta process
 * shares by opening it for each operation (see @xsmeta/eventstore-level); an operation waits up
 * to 30 s while another process holds it, then fails with STORE_LOCKED.
 *
 * The LevelDB code (classic-level, msgpackr: about 40 ms of CPU at start-up) is loaded at the
 * log's first operation, not when this module is: a command that never reaches the log (any
 * `--help`, a `list` whose pool is unreachable, `history` answered from its run index) does
 * not pay for it. packages/cli/test/startup.test.ts checks the module list.
 */
export function openEvents(stateDir: string): EventStore {
  return new LazyEventStore(join(stateDir, 'events'));
}

/**
 * Opens the log now, for a command that will write to it soon (a backup): the LevelDB code
 * loads and the folder opens (LevelDB turns the last process's log into a table as it opens:
 * 10-130 ms here) while the pool is reached, instead of when the first event waits. The store
 * holds the folder a while after this read of nothing (see @xsmeta/eventstore-level), and lets
 * go when another process knocks; the command's own store closes it. A failure here is left to
 * the command's first event, which meets it again and says so.
 */
export function preloadEventLog(stateDir: string): void {
  (async () => {
    for await (const _ of openEvents(stateDir).readStream('xsmeta-open', { maxCount: 1 })) break;
  })().catch(() => {});
}

/** The shared LevelDB store, imported and constructed on first use. */
class LazyEventStore implements EventStore {
  private loading: Promise<EventStore> | undefined;
  private closed = false;
  constructor(readonly location: string) {}

  private store(): Promise<EventStore> {
    this.loading ??= import('@xsmeta/eventstore-level').then(async ({ SharedLevelEventStore }) => {
      const s = new SharedLevelEventStore(this.location, { knownTypes: KNOWN_EVENT_TYPES });
      // Closed before its first use: it answers as a closed store does (STORE_CLOSED).
      if (this.closed) await s.close();
      return s;
    });
    return this.loading;
  }
  async appendToStream(
    stream: string,
    events: readonly NewEvent[],
    opts?: { expectedVersion?: ExpectedVersion },
  ): Promise<AppendResult> {
    return (await this.store()).appendToStream(stream, events, opts);
  }
  async *readStream(stream: string, opts?: ReadStreamOptions): AsyncIterable<RecordedEvent> {
    yield* (await this.store()).readStream(stream, opts);
  }
  async *readAll(opts?: {
    fromPosition?: number;
    maxCount?: number;
  }): AsyncIterable<RecordedEvent> {
    yield* (await this.store()).readAll(opts);
  }
  subscribe(
    fromPosition: number,
    handler: (e: RecordedEvent) => void | Promise<void>,
  ): Subscription {
    let inner: Subscription | undefined;
    let stopped = false;
    const done = this.store().then(
      (s) => {
        if (stopped) return null;
        inner = s.subscribe(fromPosition, handler);
        return inner.done;
      },
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    return {
      close() {
        stopped = true;
        inner?.close();
      },
      done,
    };
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Never opened: nothing to load only to close it.
    if (this.loading) await (await this.loading).close();
  }
}

/** This process as events record it: host, boot, pid and the pid's start time. */
export function ownerMetadata(): EventMetadata {
  const o = parseOwner(myOwner());
  return o ? { host: o.host, pid: o.pid, boot: o.boot ?? null, processStart: o.start ?? null } : {};
}

/**
 * The log as a run sees it: every event it appends carries this process's owner (so a run
 * whose process died can be told from one still running), nothing is appended once a signal
 * arrived (what the run does then is its reaction to the clean-up, not its outcome), and the
 * streams it wrote to are remembered, to be ended as interrupted by the clean-up.
 *
 * When the log cannot be written (a full disk, a broken store), the run goes on: what it did
 * is what it reports. `historyLost` is told once, and the run's later events are kept in memory
 * only (a mirror of the run's own streams), so that its decisions still see what it recorded.
 */
class RunLog implements EventStore {
  readonly streams = new Set<string>();
  private readonly mirror = new MemoryEventStore();
  private lost = false;
  constructor(
    private readonly log: EventStore,
    private readonly owner: EventMetadata,
    private readonly historyLost?: (e: unknown) => void,
  ) {}

  async appendToStream(
    stream: string,
    events: readonly NewEvent[],
    opts?: { expectedVersion?: ExpectedVersion },
  ): Promise<AppendResult> {
    if (signalReceived() !== undefined) throw new Error('interrupted: the run is being cleaned up');
    this.streams.add(stream);
    const stamped = events.map((e) => ({ ...e, metadata: { ...this.owner, ...e.metadata } }));
    if (!this.lost) {
      try {
        const r = await this.log.appendToStream(stream, stamped, opts);
        await this.mirror.appendToStream(stream, stamped);
        return r;
      } catch (e) {
        if (e instanceof ConcurrencyError || !this.historyLost) throw e;
        this.lost = true;
        this.historyLost(e);
      }
    }
    return this.mirror.appendToStream(stream, stamped);
  }
  async *readStream(stream: string, opts?: ReadStreamOptions) {
    if (!this.lost) {
      let yielded = false;
      try {
        for await (const e of this.log.readStream(stream, opts)) {
          yielded = true;
          yield e;
        }
        return;
      } catch (e) {
        if (yielded || !this.historyLost) throw e;
        this.lost = true;
        this.historyLost(e);
      }
    }
    yield* this.mirror.readStream(stream, opts);
  }
  readAll(opts?: { fromPosition?: number; maxCount?: number }) {
    return this.log.readAll(opts);
  }
  subscribe(...args: Parameters<EventStore['subscribe']>) {
    return this.log.subscribe(...args);
  }
  close() {
    return this.log.close();
  }
}

/**
 * Runs `fn` with the shared event log: each event is durably appended when the run decides it
 * (BackupStarted before the backup disk is touched, each VM's restore outcome as it ends). On
 * a signal, the clean-up ends the runs this process started as interrupted, after the VBDs are
 * gone (the clean-up registered first runs last) and before the lock is released.
 */
export async function withEvents<T>(
  stateDir: string,
  fn: (events: EventStore) => Promise<T>,
  historyLost?: (e: unknown) => void,
): Promise<T> {
  const owner = ownerMetadata();
  const log = openEvents(stateDir);
  const run = new RunLog(log, owner, historyLost);
  let ending: Promise<void> | undefined;
  const interrupt = () => {
    ending ??= (async () => {
      const reason = `interrupted by ${signalReceived() ?? 'a signal'}`;
      for (const stream of run.streams) await interruptRun(log, stream, reason, owner);
    })();
    return ending;
  };
  const drop = onCleanup(interrupt);
  try {
    return await fn(run);
  } finally {
    drop();
    // The run gave up after a signal (its device was closed under it) before the clean-up
    // reached this step: its runs are ended here.
    if (signalReceived() !== undefined) await interrupt();
  }
}

/** The warning line of a run whose history could not be written (see RunLog). */
export function historyLostLine(what: string, e: unknown): string {
  const why = withCode(
    errorCode(e) ?? 'error',
    (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '',
  );
  return `warning: the history of this ${what} could not be written (${why}): 'xsmeta history' will not show it; the ${what} itself is reported as it happened`;
}
