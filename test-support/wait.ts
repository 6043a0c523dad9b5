/**
 * Shared by the packages' tests: waiting for something to happen without betting on how long it
 * takes. Polls a condition, with a bound that is generous for a busy machine (a test must pass
 * on two cores kept busy by other work): the bound only turns a hang into a clear failure.
 */
export async function until(
  ok: () => boolean | Promise<boolean>,
  what: string,
  boundMs = 60_000,
): Promise<void> {
  const end = Date.now() + boundMs;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out after ${boundMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
