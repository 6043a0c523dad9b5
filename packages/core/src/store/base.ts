import type {
  AppendResult,
  EventStore,
  ExpectedVersion,
  NewEvent,
  ReadStreamOptions,
  RecordedEvent,
  Subscription,
} from './types.js';
import { EventStoreError } from './types.js';

/**
 * What both stores share: one append at a time (so check-then-write is atomic), live
 * subscriptions fed after each append, and catch-up reads for new subscribers.
 */
export abstract class BaseEventStore implements EventStore {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly live = new Set<(e: RecordedEvent) => void>();
  protected closed = false;

  protected abstract doAppend(
    stream: string,
    events: readonly NewEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<RecordedEvent[]>;
  abstract readStream(stream: string, opts?: ReadStreamOptions): AsyncIterable<RecordedEvent>;
  abstract readAll(opts?: {
    fromPosition?: number;
    maxCount?: number;
  }): AsyncIterable<RecordedEvent>;
  protected abstract doClose(): Promise<void>;

  protected assertOpen(): void {
    if (this.closed) throw new EventStoreError('STORE_CLOSED', 'the event store is closed');
  }

  appendToStream(
    stream: string,
    events: readonly NewEvent[],
    opts: { expectedVersion?: ExpectedVersion } = {},
  ): Promise<AppendResult> {
    const run = async (): Promise<AppendResult> => {
      this.assertOpen();
      if (!stream || stream.length > 200 || stream.includes('\u0000')) {
        throw new EventStoreError('EVENT_CORRUPT', `bad stream name ${JSON.stringify(stream)}`);
      }
      const recorded = await this.doAppend(stream, events, opts.expectedVersion);
      for (const e of recorded) for (const l of this.live) l(e);
      const last = recorded[recorded.length - 1];
      return {
        nextExpectedVersion: last ? last.version : await this.headOf(stream),
        lastPosition: last ? last.position : 0,
      };
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  protected abstract headOf(stream: string): Promise<number>;

  subscribe(
    fromPosition: number,
    handler: (e: RecordedEvent) => void | Promise<void>,
  ): Subscription {
    let closed = false;
    let next = fromPosition;
    const pending: RecordedEvent[] = [];
    let catching = true;
    let chain: Promise<void> = Promise.resolve();
    const deliver = (e: RecordedEvent) => {
      if (closed || e.position < next) return;
      next = e.position + 1;
      chain = chain.then(() => (closed ? undefined : handler(e))).then(() => {});
    };
    const onLive = (e: RecordedEvent) => {
      if (catching) pending.push(e);
      else deliver(e);
    };
    this.live.add(onLive);
    void (async () => {
      for await (const e of this.readAll({ fromPosition })) {
        if (closed) return;
        deliver(e);
      }
      catching = false;
      for (const e of pending.splice(0)) deliver(e);
    })();
    return {
      close: () => {
        closed = true;
        this.live.delete(onLive);
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    this.live.clear();
    await this.doClose();
  }
}
