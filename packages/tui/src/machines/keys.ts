/** A key press as the dialogs' state machines see it (the UI maps the terminal's keys to it). */
export type Keypress =
  | {
      readonly name:
        | 'up'
        | 'down'
        | 'left'
        | 'right'
        | 'enter'
        | 'escape'
        | 'backspace'
        | 'tab'
        | 'pageup'
        | 'pagedown'
        | 'home'
        | 'end';
    }
  | { readonly name: 'char'; readonly char: string };

/** The key of a keypress, for tests and for the UI: `key('down')`, `key('char', 'q')`. */
export function key(name: Exclude<Keypress['name'], 'char'>): Keypress;
export function key(name: 'char', char: string): Keypress;
export function key(name: Keypress['name'], char = ''): Keypress {
  return name === 'char' ? { name, char } : { name };
}

/** How far PageUp / PageDown move a cursor. */
const PAGE = 5;

/**
 * The cursor after a navigation key in a list of `length` items (clamped, never wraps);
 * `null` when the key is no navigation key, so callers can handle it.
 */
export function moveCursor(cursor: number, length: number, k: Keypress): number | null {
  const last = Math.max(0, length - 1);
  const clamp = (n: number) => Math.min(last, Math.max(0, n));
  switch (k.name) {
    case 'up':
      return clamp(cursor - 1);
    case 'down':
      return clamp(cursor + 1);
    case 'pageup':
      return clamp(cursor - PAGE);
    case 'pagedown':
      return clamp(cursor + PAGE);
    case 'home':
      return 0;
    case 'end':
      return last;
    default:
      return null;
  }
}

/** Esc, or Left as in xsconsole's menus: go back one step. */
export function isBack(k: Keypress): boolean {
  return k.name === 'escape' || k.name === 'left';
}

/** The message of anything thrown, in plain words, with its code when it has one. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const message = err.message.trim() || err.name;
    return typeof code === 'string' && code !== '' && !message.includes(code)
      ? `${message} (${code})`
      : message;
  }
  return String(err);
}
