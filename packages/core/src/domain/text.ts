/**
 * Text that came from a backup or from the pool (VM and SR names, a legacy disk's folder names,
 * a guest-written `ova.xml`) is untrusted: printed raw, an ESC sequence in a VM name retitles
 * the terminal, clears it or fakes lines. `escapeText` makes such text inert for a terminal.
 */

/** Whether a code point is one a terminal (or a bidirectional text renderer) acts on. */
function unsafe(c: number): boolean {
  return (
    c < 0x20 || // C0: ESC, BEL, CR, LF, BS, TAB ...
    (c >= 0x7f && c <= 0x9f) || // DEL and C1 (0x9b is an 8-bit CSI)
    c === 0x2028 ||
    c === 0x2029 || // line and paragraph separators
    c === 0x200e ||
    c === 0x200f || // directional marks
    (c >= 0x202a && c <= 0x202e) || // bidirectional embeddings and overrides
    (c >= 0x2066 && c <= 0x2069) // bidirectional isolates
  );
}

/**
 * `text` with every control character written as a `\uXXXX` escape (so that a JSON document
 * stays valid JSON meaning the same); the characters of `keep` (say `'\n'` for a multi-line
 * message of ours) are left as they are. Pure; printable text, whatever its script, is unchanged.
 */
export function escapeText(text: string, keep = ''): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (!unsafe(c) || keep.includes(text[i]!)) continue;
    out += `${text.slice(from, i)}\\u${c.toString(16).padStart(4, '0')}`;
    from = i + 1;
  }
  return from === 0 ? text : out + text.slice(from);
}

/**
 * `value` with every string in it (in arrays and plain objects, at any depth) escaped as by
 * escapeText: for whole results whose strings came from a backup or the pool.
 */
export function escapeStrings<T>(value: T): T {
  if (typeof value === 'string') return escapeText(value) as T;
  if (Array.isArray(value)) return value.map((v) => escapeStrings(v)) as T;
  if (
    value !== null &&
    typeof value === 'object' &&
    Object.getPrototypeOf(value) === Object.prototype
  )
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeStrings(v)])) as T;
  return value;
}
