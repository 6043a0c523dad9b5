import { type AppendOutcome, BaseEventStore } from './base.js';
import type {
  Clock,
  ExpectedVersion,
  IdentifiedEvent,
  ReadStreamOptions,
  RecordedEvent,
} from './types.js';
import { checkExpected, checkStreamName, idempotentRetry } from './types.js';

/** An in-memory event store with the same behaviour as the LevelDB one (tests, dry runs). */
export class MemoryEventStore extends BaseEventStore {
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly ids = new Map<string, RecordedEvent>();

  constructor(private readonly clock: Clock = { now: () => new Date() }) {
    super();
  }

  protected async doAppend(
    stream: string,
    events: readonly IdentifiedEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<AppendOutcome> {
    const list = this.streams.get(stream) ?? [];
    const retry = idempotentRetry(
      stream,
      events,
      events.map((e) => (e.idGiven ? this.ids.get(e.id) : undefined)),
    );
    if (retry !== 'new') {
      const last = retry[retry.length - 1]!;
      return {
        recorded: [],
        result: { nextExpectedVersion: last.version, lastPosition: last.position },
      };
    }
    checkExpected(stream, expected, list.length - 1);
    const at = this.clock.now().toISOString();
    const recorded: RecordedEvent[] = events.map((e, i) => ({
      id: e.id,
      position: this.log.length + i + 1,
      stream,
      version: list.length + i,
      type: e.type,
      at,
      data: structuredClone(e.data),
      metadata: structuredClone(e.metadata ?? {}),
    }));
    this.log.push(...recorded);
    this.streams.set(stream, [...list, ...recorded]);
    for (const e of recorded) this.ids.set(e.id, e);
    const last = recorded[recorded.length - 1];
    return {
      recorded,
      result: {
        nextExpectedVersion: last ? last.version : list.length - 1,
        lastPosition: last ? last.position : 0,
      },
    };
  }

  async *readStream(stream: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    checkStreamName(stream);
    const list = this.streams.get(stream) ?? [];
    const back = opts.direction === 'backwards';
    // Backwards from past the end starts at the last event, as on every store.
    const from = back
      ? Math.min(opts.from ?? list.length - 1, list.length - 1)
      : Math.max(0, opts.from ?? 0);
    let n = 0;
    for (let v = from; back ? v >= 0 : v < list.length; v += back ? -1 : 1) {
      if (opts.maxCount !== undefined && n++ >= opts.maxCount) return;
      yield structuredClone(list[v]!);
    }
  }

  async *readAll(
    opts: { fromPosition?: number; maxCount?: number } = {},
  ): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    let n = 0;
    for (let p = Math.max(1, opts.fromPosition ?? 1); p <= this.log.length; p++) {
      if (opts.maxCount !== undefined && n++ >= opts.maxCount) return;
      yield structuredClone(this.log[p - 1]!);
    }
  }

  protected async doClose(): Promise<void> {}
}
