/**
 * A decider: pure functions over plain data (no I/O, no clock). `initialState` is a factory, so
 * no fold can change the state another one starts from.
 */
export interface Decider<Command, Event, State> {
  decide(command: Command, state: State): readonly Event[];
  evolve(state: State, event: Event): State;
  initialState(): State;
}

/** Folds events into a state with a decider's evolve. */
export function fold<E, S>(
  d: { evolve(s: S, e: E): S; initialState(): S },
  events: readonly E[],
): S {
  return events.reduce((s, e) => d.evolve(s, e), d.initialState());
}

export type DomainErrorCode =
  | 'INVALID_FREQUENCY'
  | 'SCHEDULE_NEVER'
  | 'RUN_ALREADY_STARTED'
  | 'RUN_NOT_STARTED'
  | 'RUN_FINISHED'
  | 'ALREADY_CONVERTED'
  | 'VM_ALREADY_SKIPPED';

export class DomainError extends Error {
  override readonly name = 'DomainError';
  constructor(
    readonly code: DomainErrorCode,
    message: string,
  ) {
    super(message);
  }
}
