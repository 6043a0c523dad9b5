import type {
  AppendResult,
  EventStore,
  ExpectedVersion,
  IdentifiedEvent,
  NewEvent,
  ReadStreamOptions,
  RecordedEvent,
  Subscription,
} from './types.js';
import { checkEventId, checkStreamName, EventStoreError } from './types.js';

/** What an implementation's append did: the events it wrote (none for a retry) and the result. */
export interface AppendOutcome {
  readonly recorded: readonly RecordedEvent[];
  readonly result: AppendResult;
}

/**
 * What every store shares: checked stream names and event ids, one append at a time (so
 * check-then-write is atomic), live subscriptions fed after each append, and catch-up reads for
 * new subscribers. Implementations write `doAppend`, `readStream`, `readAll` and `doClose`.
 */
export abstract class BaseEventStore implements EventStore {
  private queue: Promise<unknown> = Promise.resolve();
  private readonly live = new Set<(e: RecordedEvent) => void>();
  protected closed = false;

  /**
   * Appends `events` after checking `expected`. Ids the writer gave are looked up first: an
   * append whose given ids are all stored, in order, in this stream returns the first append's
   * result and writes nothing. Ids the store made (random UUIDs) need no look-up.
   */
  protected abstract doAppend(
    stream: string,
    events: readonly IdentifiedEvent[],
    expected: ExpectedVersion | undefined,
  ): Promise<AppendOutcome>;
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
      checkStreamName(stream);
      const withIds = events.map((e) => {
        if (e.id !== undefined) checkEventId(e.id);
        return { ...e, id: e.id ?? globalThis.crypto.randomUUID(), idGiven: e.id !== undefined };
      });
      if (new Set(withIds.map((e) => e.id)).size !== withIds.length)
        throw new EventStoreError('EVENT_ID_CONFLICT', 'an append names one event id twice');
      const { recorded, result } = await this.doAppend(stream, withIds, opts.expectedVersion);
      for (const e of recorded) for (const l of this.live) l(e);
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => {});
    return p;
  }

  subscribe(
    fromPosition: number,
    handler: (e: RecordedEvent) => void | Promise<void>,
  ): Subscription {
    let stopped = false;
    let next = fromPosition;
    const pending: RecordedEvent[] = [];
    let catching = true;
    let chain: Promise<void> = Promise.resolve();
    let finish: (err: Error | null) => void = () => {};
    const done = new Promise<Error | null>((r) => {
      finish = r;
    });
    const stop = (err: Error | null) => {
      if (stopped) return;
      stopped = true;
      this.live.delete(onLive);
      // After the deliveries already queued have settled (they see `stopped` and skip).
      void chain.then(() => finish(err));
    };
    const deliver = (e: RecordedEvent) => {
      if (stopped || e.position < next) return;
      next = e.position + 1;
      chain = chain.then(async () => {
        if (stopped) return;
        try {
          await handler(e);
        } catch (err) {
          stop(err instanceof Error ? err : new Error(String(err)));
        }
      });
    };
    const onLive = (e: RecordedEvent) => {
      if (catching) pending.push(e);
      else deliver(e);
    };
    this.live.add(onLive);
    void (async () => {
      try {
        for await (const e of this.readAll({ fromPosition })) {
          if (stopped) return;
          deliver(e);
        }
      } catch (err) {
        stop(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      catching = false;
      for (const e of pending.splice(0)) deliver(e);
    })();
    return { close: () => stop(null), done };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.queue;
    this.closed = true;
    this.live.clear();
    await this.doClose();
  }
}
