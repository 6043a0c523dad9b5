/**
 * The byte scanner under ova-split.ts: XML-RPC's tags read straight from the bytes of an
 * export's ova.xml, with no string made of the text and no tree built; the usual spelling
 * `<member><name>…</name><value>` is matched byte for byte, making no tag object for it (a
 * pool's export holds millions of members). Text holds no `<` (XML escapes it), so a tag
 * starts at each `<`.
 */
import { XapiError } from './errors.js';
import type { XmlRpcValue } from './xmlrpc.js';
import { decodeValue } from './xmlrpc-decode.js';

export function bad(why: string): XapiError {
  return new XapiError('XAPI_PROTOCOL', ['ova'], `ova.xml: ${why}`);
}

/** A tag name as a number: its length, first and last bytes (unique among XML-RPC's tags). */
const key = (name: string) =>
  name.length * 65536 + name.charCodeAt(0) * 256 + name.charCodeAt(name.length - 1);
export const VALUE = key('value');
export const STRUCT = key('struct');
export const MEMBER = key('member');
export const NAME = key('name');
export const ARRAY = key('array');
export const DATA = key('data');
const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;

export interface Tag {
  name: number;
  close: boolean;
  selfClose: boolean;
  start: number;
  end: number;
}

const names = new Map(
  ['value', 'struct', 'member', 'name', 'array', 'data'].map((n) => [key(n), n] as const),
);

const bytes = (s: string) => Buffer.from(s, 'latin1');
const MEMBER_NAME = bytes('<member><name>');
const NAME_VALUE = bytes('</name><value>');
const END_MEMBER = bytes('</member>');

/** A leaf string value (`<value>text</value>` or with `<string>`) with no entity to decode. */
const PLAIN = /^<value>(?:<string>)?([^<&]*)(?:<\/string>)?<\/value>$/;
/** An array of such strings. */
const PLAIN_LIST =
  /^<value><array><data>((?:<value>(?:<string>)?[^<&]*(?:<\/string>)?<\/value>)*)<\/data><\/array><\/value>$/;
const PLAIN_ITEM = /<value>(?:<string>)?([^<&]*)(?:<\/string>)?<\/value>/g;

/** Thrown by the scanner when the bytes so far end inside what it reads (more will come). */
class NeedMore extends Error {}
/** The one instance thrown (no stack captured each time the bytes run out). */
export const NEED_MORE = new NeedMore('more bytes needed');

/** Called for each member of a struct: its name's byte range and its value's tag. */
type EachMember = (nameStart: number, nameEnd: number, value: Tag) => number;

export class Scanner {
  constructor(public b: Buffer) {}

  /** Whether `lit` is spelled at `i` (false also when the bytes end first). */
  at(i: number, lit: Buffer): boolean {
    const b = this.b;
    if (i + lit.length > b.length) return false;
    for (let k = 0; k < lit.length; k++) if (b[i + k] !== lit[k]) return false;
    return true;
  }

  /** The next tag at or after `i` (declarations and comments skipped). */
  tag(i: number): Tag {
    const b = this.b;
    for (;;) {
      const lt = b.indexOf(LT, i);
      if (lt < 0 || lt + 1 >= b.length) throw NEED_MORE;
      const c = b[lt + 1];
      if (c === 0x3f /* ? */ || c === 0x21 /* ! */) {
        const close = b.indexOf(c === 0x3f ? '?>' : '>', lt + 2);
        if (close < 0) throw NEED_MORE;
        i = close + 1;
        continue;
      }
      const gt = b.indexOf(GT, lt + 1);
      if (gt < 0) throw NEED_MORE;
      const close = c === SLASH;
      const selfClose = b[gt - 1] === SLASH;
      let n = lt + (close ? 2 : 1);
      const from = n;
      while (n < gt) {
        const d = b[n]!;
        if (d === SLASH || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
        n++;
      }
      const len = n - from;
      const name = len < 1 ? -1 : len * 65536 + b[from]! * 256 + b[n - 1]!;
      return { name, close, selfClose, start: lt, end: gt + 1 };
    }
  }

  open(i: number, name: number): Tag {
    const t = this.tag(i);
    if (t.name !== name || t.close) throw bad(`expected <${names.get(name)}> at ${t.start}`);
    return t;
  }

  closing(i: number, name: number): Tag {
    const t = this.tag(i);
    if (t.name !== name || !t.close) throw bad(`expected </${names.get(name)}> at ${t.start}`);
    return t;
  }

  /** Whether `value` is spelled at `i` (v-a-l-u-e). */
  isValue(i: number): boolean {
    const b = this.b;
    return (
      b[i] === 0x76 &&
      b[i + 1] === 0x61 &&
      b[i + 2] === 0x6c &&
      b[i + 3] === 0x75 &&
      b[i + 4] === 0x65
    );
  }

  /**
   * From a `<value>` tag: the index after its `</value>`. Only `<value` and `</value>` count
   * (text holds no `<`: XML escapes it).
   */
  skipValue(v: Tag): number {
    if (v.selfClose) return v.end;
    const b = this.b;
    let depth = 1;
    let i = v.end;
    while (depth > 0) {
      const lt = b.indexOf(LT, i);
      if (lt < 0 || lt + 8 > b.length) throw NEED_MORE;
      if (b[lt + 1] === SLASH) {
        if (this.isValue(lt + 2) && b[lt + 7] === GT) {
          depth--;
          i = lt + 8;
        } else i = lt + 2;
        continue;
      }
      if (this.isValue(lt + 1)) {
        // `<value>` itself needs no tag read: it is neither self-closing nor spelled otherwise.
        if (b[lt + 6] === GT) {
          depth++;
          i = lt + 7;
          continue;
        }
        const t = this.tag(lt);
        if (t.name === VALUE && !t.selfClose) depth++;
        i = t.end;
        continue;
      }
      i = lt + 1;
    }
    return i;
  }

  /**
   * The members of a struct value (at its `<value>` tag): `each` gets the member's name (as
   * a byte range: decoded only by who needs it) and its value tag, and returns where that
   * value ends (reading or skipping it). Returns the index after the struct's `</value>`.
   */
  members(v: Tag, each: EachMember): number {
    if (v.selfClose) throw bad(`expected a struct at ${v.start}`);
    const st = this.open(v.end, STRUCT);
    if (st.selfClose) return this.closing(st.end, VALUE).end;
    const b = this.b;
    let i = st.end;
    for (;;) {
      // The usual spelling, matched byte for byte; anything else goes the general way.
      if (this.at(i, MEMBER_NAME)) {
        const ns = i + MEMBER_NAME.length;
        const ne = b.indexOf(LT, ns);
        if (ne >= 0 && this.at(ne, NAME_VALUE)) {
          const vs = ne + NAME_VALUE.length;
          const value: Tag = {
            name: VALUE,
            close: false,
            selfClose: false,
            start: vs - 7,
            end: vs,
          };
          const j = each(ns, ne, value);
          i = this.at(j, END_MEMBER) ? j + END_MEMBER.length : this.closing(j, MEMBER).end;
          continue;
        }
      }
      const t = this.tag(i);
      if (t.name === STRUCT && t.close) return this.closing(t.end, VALUE).end;
      if (t.name !== MEMBER || t.close) throw bad(`expected <member> at ${t.start}`);
      const nameOpen = this.open(t.end, NAME);
      const nameClose = this.closing(nameOpen.end, NAME);
      const value = this.open(nameClose.end, VALUE);
      i = this.closing(each(nameOpen.end, nameClose.start, value), MEMBER).end;
    }
  }

  /** The text of a byte range (a member's name). */
  text(start: number, end: number): string {
    return this.b.toString('utf8', start, end);
  }

  /** A value, decoded: the common plain strings and lists of them without the full decoder. */
  decode(start: number, end: number): XmlRpcValue {
    const text = this.b.toString('utf8', start, end);
    const one = PLAIN.exec(text);
    if (one) return one[1]!;
    const list = PLAIN_LIST.exec(text);
    if (list) return [...list[1]!.matchAll(PLAIN_ITEM)].map((m) => m[1]!);
    return decodeValue(text);
  }
}
