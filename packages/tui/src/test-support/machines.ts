/**
 * Shared by the dialog machines' tests (src/machines/*.test.ts): folding actions into a state,
 * a key press as an action, and an SR as `listSrs` gives it.
 */
import { type Keypress, key } from '../machines/keys.js';
import type { SrChoice } from '../services.js';

type KeyName = Exclude<Keypress['name'], 'char'>;

/** `when(state, ...actions)`: the state after `reducer` took each action in turn. */
export const folder =
  <S, A>(reducer: (s: S, a: A) => S) =>
  (s: S, ...actions: A[]): S =>
    actions.reduce(reducer, s);

/** A press of a named key, as the dialogs' machines take it. */
export const press = (name: KeyName): { type: 'key'; key: Keypress } => ({
  type: 'key',
  key: key(name),
});

/** An SR named after its uuid, 1 GB free of 2, with neither backup disk unless given. */
export const srChoice = (uuid: string, given: Partial<SrChoice> = {}): SrChoice => ({
  uuid,
  name: uuid.toUpperCase(),
  type: 'nfs',
  freeBytes: 1e9,
  sizeBytes: 2e9,
  hasBackupDisk: false,
  isDefault: false,
  ...given,
});
