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
 * The commands of one run on its own stream, each through handleCommand; what one leaves
 * (state, version) is what the next decides on first. No store (a dry run of a use-case in a
 * test): an in-memory one.
 */
export function runStream<C, E extends { type: string; data: unknown }, S>(
  store: EventStore | null,
  stream: string,
  decider: Decider<C, E, S>,
  metadata: EventMetadata,
) {
  const events = store ?? new MemoryEventStore();
  let known: { state: S; version: number } | undefined;
  // A run's own commands (parallel VM restores) are handled one at a time, in call order.
  let turn: Promise<unknown> = Promise.resolve();
  return {
    /** The run's state as of its last command. */
    state: (): S => known?.state ?? decider.initialState(),
    exec(cmd: C): Promise<readonly E[]> {
      const go = async () => {
        const r = await handleCommand(events, stream, decider, cmd, { known, metadata });
        known = { state: r.state, version: r.version };
        return r.events;
      };
      const p = turn.then(go, go);
      turn = p.catch(() => {});
      return p;
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
