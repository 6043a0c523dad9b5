/**
 * Shared by the packages' tests (and the behaviour suites under packages' src/test-support):
 * the error a promise rejects with, for a test to look into; a promise that fulfils instead
 * fails the test.
 */
export async function rejection<E = unknown>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (e) {
    return e as E;
  }
  throw new Error('expected a failure');
}
