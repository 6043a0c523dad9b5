/** How many exports (backup) or imports (restore) run at once unless the caller says. */
export const DEFAULT_PARALLEL = 8;

/**
 * Runs `fn` over `items` with at most `limit` at once, results in order. Once `signal` is
 * aborted no item is started; those running finish (their results are kept, the rest are
 * holes), so nothing runs on after the promise settled.
 */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T, i: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !signal?.aborted) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}
