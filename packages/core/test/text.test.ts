import { describe, expect, it } from 'vitest';
import { escapeStrings, escapeText } from '../src/index.js';

const ESC = '\u001b';
/** The C0, DEL and C1 characters of a string. */
const controls = (s: string) =>
  [...s].filter(
    (ch) => ch.charCodeAt(0) < 0x20 || (ch.charCodeAt(0) >= 0x7f && ch.charCodeAt(0) <= 0x9f),
  );

describe('escapeText', () => {
  it('writes terminal control sequences as inert \\u escapes', () => {
    const name = `evil${ESC}]0;owned\u0007${ESC}[2J${ESC}[31mred\r\nfake line\u009b1m`;
    const out = escapeText(name);
    expect(out).toBe(
      'evil\\u001b]0;owned\\u0007\\u001b[2J\\u001b[31mred\\u000d\\u000afake line\\u009b1m',
    );
    expect(controls(out)).toEqual([]);
    // Escaped inside a JSON document it is still JSON, meaning the same string.
    expect(JSON.parse(escapeText(JSON.stringify({ name })))).toEqual({ name });
  });

  it('leaves printable text of any script alone, and keeps what it is told to keep', () => {
    for (const s of ['web-01', 'Débian 12 — modèle', '数据库', 'a\\u001b', ''])
      expect(escapeText(s)).toBe(s);
    expect(escapeText('a\u202eb')).toBe('a\\u202eb');
    expect(escapeText('one\ntwo\tthree\u0007', '\n\t')).toBe('one\ntwo\tthree\\u0007');
  });

  it('escapes every string of a result, at any depth', () => {
    expect(
      escapeStrings({ srs: [{ name: `x${ESC}[2J`, size: 3, ok: true, none: null }], n: 'y' }),
    ).toEqual({ srs: [{ name: 'x\\u001b[2J', size: 3, ok: true, none: null }], n: 'y' });
  });
});
