import { expect } from 'vitest';
import { type Decider, DomainError, fold } from '../src/index.js';

/**
 * Given events, When a command, Then the events decided (or the error refused): a decider's
 * rules as data. `DeciderSpecification.for(decider).given([...]).when(cmd).thenEvents([...])`.
 */
export const DeciderSpecification = {
  for<C, E, S>(decider: Decider<C, E, S>) {
    return {
      given(events: readonly E[]) {
        const state = fold(decider, events);
        return {
          when(command: C) {
            const run = () => decider.decide(command, state);
            return {
              thenEvents(expected: readonly E[]) {
                expect(run()).toEqual(expected);
              },
              thenNothing() {
                expect(run()).toEqual([]);
              },
              thenThrows(code: string) {
                let err: unknown;
                try {
                  run();
                } catch (e) {
                  err = e;
                }
                expect(err).toBeInstanceOf(DomainError);
                expect((err as DomainError).code).toBe(code);
              },
            };
          },
        };
      },
    };
  },
};
