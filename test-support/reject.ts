/**
 * Shared by the packages' tests (and the behaviour suites under packages' src/test-support):
 * the error a promise rejects with (or a function throws or rejects with), for a test to look
 * into; one that fulfils instead fails the test.
 */
export async function rejection<E = unknown>(p: Promise<unknown> | (() => unknown)): Promise<E> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as E;
  }
  throw new Error('expected a failure');
}
