import type { Decider } from '../domain/decider.js';
import type { EventStore, ExpectedVersion } from '../store/types.js';

/** Runs commands through a decider and appends its events to one stream, optimistically. */
export class StreamRecorder<C, E extends { type: string; data: unknown }, S> {
  private state: S;
  private version: ExpectedVersion = 'no_stream';

  constructor(
    private readonly store: EventStore | null,
    readonly stream: string,
    private readonly decider: Decider<C, E, S>,
  ) {
    this.state = decider.initialState;
  }

  get current(): S {
    return this.state;
  }

  async exec(cmd: C): Promise<readonly E[]> {
    const events = this.decider.decide(cmd, this.state);
    if (events.length === 0) return events;
    if (this.store) {
      const r = await this.store.appendToStream(this.stream, events, {
        expectedVersion: this.version,
      });
      this.version = r.nextExpectedVersion;
    }
    for (const e of events) this.state = this.decider.evolve(this.state, e);
    return events;
  }
}

/** A short random id for a run (no crypto needed: uniqueness within one machine's log). */
export function newRunId(now: Date, rnd: () => number = Math.random): string {
  return `${now.getTime().toString(36)}-${Math.floor(rnd() * 2 ** 32).toString(36)}`;
}
