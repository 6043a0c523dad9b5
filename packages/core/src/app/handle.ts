import type { Decider } from '../domain/decider.js';
import { backupDecider, convertDecider, restoreDecider } from '../domain/runs.js';
import { MemoryEventStore } from '../store/memory.js';
import type { EventMetadata, EventStore } from '../store/types.js';
import { ConcurrencyError } from '../store/types.js';

/** What a handled command leaves: the stream's state and version after it, and its events. */
export interface Handled<E, S> {
  readonly state: S;
  /** The events this command appended (none when the decider decided nothing). */
  readonly events: readonly E[];
  /** The stream's version after the command (-1: the stream does not exist). */
  readonly version: number;
}

export interface HandleOptions<S> {
  /** Attempts after a version conflict before giving up (default 5). */
  readonly retries?: number;
  /** Stored with every event appended (the run, the host, the process). */
  readonly metadata?: EventMetadata;
  /**
   * The state and version a previous command of this caller left: the first attempt decides on
   * it without reading the stream. Another writer meanwhile makes the append conflict, and the
   * stream is then read and folded as usual.
   */
  readonly known?: { readonly state: S; readonly version: number } | undefined;
}

async function load<E, S>(
  store: EventStore,
  stream: string,
  decider: Decider<unknown, E, S>,
): Promise<{ state: S; version: number }> {
  let state = decider.initialState();
  let version = -1;
  for await (const e of store.readStream(stream)) {
    state = decider.evolve(state, { type: e.type, data: e.data } as E);
    version = e.version;
  }
  return { state, version };
}

/**
 * Event-sourced command handling: read and fold the stream, decide, append the decided events
 * at the version read (so nothing appended in between is overlooked), and on a version
 * conflict start again from the read. `command` may be a function of the state (a command
 * that depends on what the stream holds). Errors of the decider (DomainError) and of the store
 * other than a version conflict are thrown as they are.
 */
export async function handleCommand<C, E extends { type: string; data: unknown }, S>(
  store: EventStore,
  stream: string,
  decider: Decider<C, E, S>,
  command: C | ((state: S) => C),
  opts: HandleOptions<S> = {},
): Promise<Handled<E, S>> {
  const retries = opts.retries ?? 5;
  let known = opts.known;
  for (let attempt = 0; ; attempt++) {
    const { state, version } = known ?? (await load(store, stream, decider));
    known = undefined;
    const cmd = typeof command === 'function' ? (command as (s: S) => C)(state) : (command as C);
    const events = decider.decide(cmd, state);
    if (events.length === 0) return { state, events, version };
    try {
      const r = await store.appendToStream(
        stream,
        events.map((e) => ({
          type: e.type,
          data: e.data,
          ...(opts.metadata ? { metadata: opts.metadata } : {}),
        })),
        { expectedVersion: version === -1 ? 'no_stream' : version },
      );
      return {
        state: events.reduce((s, e) => decider.evolve(s, e), state),
        events,
        version: r.nextExpectedVersion,
      };
    } catch (e) {
      if (!(e instanceof ConcurrencyError) || attempt >= retries) throw e;
    }
  }
}

/** A short random id for a run (no crypto needed: uniqueness within one machine's log). */
export function newRunId(now: Date, rnd: () => number = Math.random): string {
  return `${now.getTime().toString(36)}-${Math.floor(rnd() * 2 ** 32).toString(36)}`;
}

/**
 * The commands of one run on its own stream, decided one after another in call order on the
 * state the ones before left (no store: a dry run of a use-case in a test gets an in-memory
 * one). Group commit: a command called while the run's previous append is being written waits
 * for it, then goes with every other command that arrived meanwhile in ONE append (one batch,
 * one sync in a durable store); each call still resolves only once its own events are stored,
 * with those events, or rejects with its own DomainError (the others of its group are not
 * affected) or with the group's store error. A version conflict (another writer) reads the
 * stream again and decides the whole group anew, as handleCommand does for one.
 */
export function runStream<C, E extends { type: string; data: unknown }, S>(
  store: EventStore | null,
  stream: string,
  decider: Decider<C, E, S>,
  metadata: EventMetadata,
) {
  const retries = 5;
  const events = store ?? new MemoryEventStore();
  let known: { state: S; version: number } | undefined;
  interface Waiting {
    cmd: C;
    resolve(events: readonly E[]): void;
    reject(e: unknown): void;
  }
  let waiting: Waiting[] = [];
  let writing = false;
  const commit = async (group: Waiting[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      let base: { state: S; version: number };
      try {
        base = known ?? (await load(events, stream, decider));
      } catch (e) {
        for (const w of group) w.reject(e);
        return;
      }
      let state = base.state;
      const all: E[] = [];
      const decided = group.map((w) => {
        try {
          const cmd = typeof w.cmd === 'function' ? (w.cmd as (s: S) => C)(state) : (w.cmd as C);
          const mine = decider.decide(cmd, state);
          state = mine.reduce((st, e) => decider.evolve(st, e), state);
          all.push(...mine);
          return { w, mine };
        } catch (error) {
          return { w, error };
        }
      });
      const settle = () => {
        for (const d of decided) {
          if ('error' in d) d.w.reject(d.error);
          else d.w.resolve(d.mine);
        }
      };
      if (all.length === 0) {
        known = { state, version: base.version };
        settle();
        return;
      }
      try {
        const r = await events.appendToStream(
          stream,
          all.map((e) => ({ type: e.type, data: e.data, metadata })),
          { expectedVersion: base.version === -1 ? 'no_stream' : base.version },
        );
        known = { state, version: r.nextExpectedVersion };
        settle();
        return;
      } catch (e) {
        if (e instanceof ConcurrencyError && attempt < retries) {
          known = undefined;
          continue;
        }
        // The state stays as the last stored append left it (the next group decides on it).
        for (const w of group) w.reject(e);
        return;
      }
    }
  };
  const drain = async () => {
    writing = true;
    try {
      while (waiting.length > 0) {
        const group = waiting;
        waiting = [];
        await commit(group);
      }
    } finally {
      writing = false;
    }
  };
  return {
    /** The run's state as of its last stored command. */
    state: (): S => known?.state ?? decider.initialState(),
    exec(cmd: C): Promise<readonly E[]> {
      return new Promise<readonly E[]>((resolve, reject) => {
        waiting.push({ cmd, resolve, reject });
        if (!writing) void drain();
      });
    },
  };
}

/** A run's decider that decides nothing once the run is no longer running. */
function whileRunning<C, E, S extends { status: string }>(d: Decider<C, E, S>): Decider<C, E, S> {
  return { ...d, decide: (c, s) => (s.status === 'running' ? d.decide(c, s) : []) };
}

/**
 * Ends a run a signal cut short, through its own decider: a backup or conversion still running
 * fails with code INTERRUPTED, a restore gets RestoreInterrupted with its counts so far. A run
 * that already ended, or a stream that is no run, is left as it is.
 */
export async function interruptRun(
  store: EventStore,
  stream: string,
  reason: string,
  metadata: EventMetadata = {},
): Promise<void> {
  const opts = { metadata };
  if (stream.startsWith('backup-'))
    await handleCommand(
      store,
      stream,
      whileRunning(backupDecider),
      (s) => ({
        type: 'FailBackup' as const,
        data: { runId: s.runId ?? '', srUuid: s.srUuid, code: 'INTERRUPTED', reason },
      }),
      opts,
    );
  else if (stream.startsWith('restore-'))
    await handleCommand(
      store,
      stream,
      whileRunning(restoreDecider),
      (s) => ({ type: 'InterruptRestore' as const, data: { runId: s.runId ?? '', reason } }),
      opts,
    );
  else if (stream.startsWith('legacy-'))
    await handleCommand(
      store,
      stream,
      whileRunning(convertDecider),
      (s) => ({
        type: 'FailConvert' as const,
        data: { runId: s.runId ?? '', code: 'INTERRUPTED', reason },
      }),
      opts,
    );
}
