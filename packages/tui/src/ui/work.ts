import { createContext, useContext, useEffect, useRef } from 'react';
import { describeError } from '../machines/keys.js';

/**
 * Keeps the service calls under way, so that the console, on its way out, can abort them
 * and wait (a bounded time) for them to settle: a backup unplugs its disk, a restore stops
 * between two VMs.
 */
export class WorkTracker {
  readonly #pending = new Set<Promise<void>>();

  track(p: Promise<void>): void {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /** Resolves when every tracked call settled, or after `timeoutMs`, whichever is first. */
  async settle(timeoutMs: number): Promise<boolean> {
    if (this.#pending.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const all = Promise.allSettled([...this.#pending]).then(() => true as const);
    try {
      return await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export const WorkTrackerContext = createContext<WorkTracker>(new WorkTracker());

/**
 * Runs `perform` once for each work request (`req`) the dialog's state asks for. When the
 * state stops asking for it (Esc, the next step, the dialog closing), the request's signal
 * fires. `perform` must not reject: it turns every outcome into an action.
 */
export function useWork<W extends { readonly req: number }>(
  work: W | null,
  perform: (work: W, signal: AbortSignal) => Promise<void>,
): void {
  const tracker = useContext(WorkTrackerContext);
  const latest = useRef({ work, perform });
  latest.current = { work, perform };
  const req = work?.req ?? null;
  useEffect(() => {
    const { work: w, perform: run } = latest.current;
    if (req === null || !w) return;
    const ac = new AbortController();
    tracker.track(run(w, ac.signal));
    return () => ac.abort();
  }, [req, tracker]);
}

/**
 * Runs one work request's service calls for a dialog's `perform`: whatever they throw becomes
 * the machine's `failed` action (the message as `describeError` words it), so that the
 * `perform` given to `useWork` never rejects.
 */
export async function orFailed(
  req: number,
  dispatch: (a: { type: 'failed'; req: number; message: string }) => void,
  calls: () => Promise<void>,
): Promise<void> {
  try {
    await calls();
  } catch (err) {
    dispatch({ type: 'failed', req, message: describeError(err) });
  }
}
