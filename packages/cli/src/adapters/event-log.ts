import { join } from 'node:path';
import {
  type AppendResult,
  ConcurrencyError,
  type EventMetadata,
  type EventStore,
  type ExpectedVersion,
  interruptRun,
  KNOWN_EVENT_TYPES,
  MemoryEventStore,
  type NewEvent,
  type ReadStreamOptions,
} from '@xsmeta/core';
import { SharedLevelEventStore } from '@xsmeta/eventstore-level';
import { myOwner, parseOwner } from '../process/owner.js';
import { onCleanup, signalReceived } from '../runtime.js';

/**
 * The event log of this machine: `<state-dir>/events`, a LevelDB that every xsmeta process
 * shares by opening it for each operation (see @xsmeta/eventstore-level); an operation waits up
 * to 30 s while another process holds it, then fails with STORE_LOCKED.
 */
export function openEvents(stateDir: string): SharedLevelEventStore {
  return new SharedLevelEventStore(join(stateDir, 'events'), {
    knownTypes: KNOWN_EVENT_TYPES,
  });
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
