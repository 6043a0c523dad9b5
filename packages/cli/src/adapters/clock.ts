import type { Clock } from '@xsmeta/core';

/** The wall clock, core's only source of time (its `Clock` port). */
export const systemClock: Clock = { now: () => new Date() };

/**
 * How the backup waits between the retries of a refused export. A test replaces `sleep` so
 * that it needs no real time.
 */
export const retryTiming = {
  sleep: (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms)),
};
