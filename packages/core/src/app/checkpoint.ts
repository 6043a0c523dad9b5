import type { Projection } from '../domain/projections.js';
import type { EventStore } from '../store/types.js';

/** A projection's state as of a log position, stored beside the log. */
export interface Checkpoint<S> {
  /** The projection's version: a checkpoint of another version is rebuilt. */
  readonly version: number;
  /** The last position folded in (0: none). */
  readonly position: number;
  /** The id of the event at `position`: another log (replaced, restored) has another. */
  readonly lastId: string | null;
  readonly state: S;
}

/** Where checkpoints are kept (the CLI: files beside the event log). */
export interface CheckpointPort {
  /** The stored checkpoint, or null when there is none or it cannot be read. */
  load(name: string): Promise<unknown>;
  save(name: string, checkpoint: Checkpoint<unknown>): Promise<void>;
}

function valid(c: unknown, version: number): c is Checkpoint<unknown> {
  const k = c as Partial<Checkpoint<unknown>> | null;
  return (
    !!k &&
    typeof k === 'object' &&
    k.version === version &&
    typeof k.position === 'number' &&
    Number.isInteger(k.position) &&
    k.position >= 0 &&
    (k.lastId === null || typeof k.lastId === 'string') &&
    k.state !== undefined
  );
}

/**
 * A projection read from its checkpoint plus the events after it, instead of the whole log;
 * rebuilt from the start when the checkpoint is absent, of another version, or stale (the
 * event at its position is not the one it folded: the log was replaced). The checkpoint is
 * saved again when events were folded in.
 */
export async function readProjection<S>(
  store: EventStore,
  projection: Projection<S>,
  at: { readonly name: string; readonly version: number; readonly checkpoints: CheckpointPort },
): Promise<S> {
  const stored = await at.checkpoints.load(at.name);
  const usable = valid(stored, at.version) && stored.position > 0;
  let state = structuredClone(projection.initial);
  let position = 0;
  let lastId: string | null = null;
  let from = 0;
  // One read from the checkpoint's own event: it must still be the one folded (same id),
  // then the events after it are folded in. Anything else: a fold of the whole log.
  if (usable) {
    let first = true;
    let stale = false;
    for await (const e of store.readAll({ fromPosition: stored.position })) {
      if (first) {
        first = false;
        if (e.position !== stored.position || e.id !== stored.lastId) {
          stale = true;
          break;
        }
        state = stored.state as S;
        position = from = stored.position;
        lastId = stored.lastId;
        continue;
      }
      state = projection.apply(state, e);
      position = e.position;
      lastId = e.id;
    }
    if (first) stale = true;
    if (stale) {
      state = structuredClone(projection.initial);
      position = from = 0;
      lastId = null;
    }
  }
  if (position === 0)
    for await (const e of store.readAll({ fromPosition: 1 })) {
      state = projection.apply(state, e);
      position = e.position;
      lastId = e.id;
    }
  if (position !== from || !valid(stored, at.version) || stored.position !== position)
    await at.checkpoints.save(at.name, { version: at.version, position, lastId, state });
  return state;
}
