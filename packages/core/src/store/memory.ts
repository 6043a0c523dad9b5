import { BaseEventStore } from './base.js';
import type {
  Clock,
  ExpectedVersion,
  NewEvent,
  ReadStreamOptions,
  RecordedEvent,
} from './types.js';
import { checkExpected } from './types.js';

/** An in-memory event store with the same behaviour as the LevelDB one (tests, dry runs). */
export class MemoryEventStore extends BaseEventStore {
  private readonly log: RecordedEvent[] = [];
  private readonly streams = new Map<string, RecordedEvent[]>();

  constructor(private readonly clock: Clock = { now: () => new Date() }) {
    super();
  }

  protected async headOf(stream: string): Promise<number> {
    return (this.streams.get(stream)?.length ?? 0) - 1;
  }

  protected async doAppend(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<RecordedEvent[]> {
    const list = this.streams.get(stream) ?? [];
    checkExpected(stream, expected, list.length - 1);
    const at = this.clock.now().toISOString();
    const recorded = events.map((e, i) => ({
      position: this.log.length + i + 1,
      stream,
      version: list.length + i,
      type: e.type,
      at,
      data: structuredClone(e.data),
    }));
    this.log.push(...recorded);
    this.streams.set(stream, [...list, ...recorded]);
    return recorded;
  }

  async *readStream(stream: string, opts: ReadStreamOptions = {}): AsyncIterable<RecordedEvent> {
    this.assertOpen();
    const list = this.streams.get(stream) ?? [];
    const back = opts.direction === 'backwards';
    const from = opts.from ?? (back ? list.length - 1 : 0);
    let n = 0;
    for (let v = from; back ? v >= 0 : v < list.length; v += back ? -1 : 1) {
      if (opts.maxCount !== undefined && n++ >= opts.maxCount) return;
      const e = list[v];
      if (e) yield structuredClone(e);
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
