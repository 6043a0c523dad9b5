import { createContext, useCallback, useContext, useLayoutEffect, useRef, useState } from 'react';
import type { Keypress } from '../machines/keys.js';
import type { ConsoleServices } from '../services.js';

/** What every dialog gets from the console. */
export interface DialogProps {
  readonly services: ConsoleServices;
  /** The dialog's place on the stack: keys go to the dialog on top. */
  readonly id: number;
  /** The dialog's box, in terminal cells. */
  readonly width: number;
  readonly height: number;
  /** The dialog is done (its machine reached `closed`): pop it. */
  readonly onClose: () => void;
}

/**
 * The console reads the keyboard in one place and hands each key to the dialog on top of
 * the stack, through the handler the dialog registered here. Registration happens in the
 * commit that mounts the dialog, so a key typed right after the one that opened it is not lost.
 */
export interface KeyRouter {
  register(id: number, handler: (k: Keypress) => void): () => void;
}

export const KeyRouterContext = createContext<KeyRouter | null>(null);

export function useDialogKeys(id: number, onKey: (k: Keypress) => void): void {
  const router = useContext(KeyRouterContext);
  const latest = useRef(onKey);
  latest.current = onKey;
  useLayoutEffect(() => router?.register(id, (k) => latest.current(k)), [router, id]);
}

/**
 * `useReducer`, but `dispatch` returns the next state at once, so that the caller can act on
 * it in the same event (pop the dialog when its machine closes) rather than one effect later,
 * when the next key may already have arrived; `current()` reads the latest state likewise.
 */
export function useMachine<S, A>(
  reducer: (s: S, a: A) => S,
  init: () => S,
): [S, (a: A) => S, () => S] {
  const [state, setState] = useState(init);
  const ref = useRef(state);
  const dispatch = useCallback(
    (a: A) => {
      const next = reducer(ref.current, a);
      if (next !== ref.current) {
        ref.current = next;
        setState(next);
      }
      return next;
    },
    [reducer],
  );
  const current = useCallback(() => ref.current, []);
  return [state, dispatch, current];
}
