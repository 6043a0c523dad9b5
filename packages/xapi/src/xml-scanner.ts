/**
 * The lexical level of the XML-RPC decoder: a strict, bounded pull scanner over a string (start
 * and end tags, text with entities and CDATA, comments and processing instructions skipped, a
 * DOCTYPE refused). Every step moves forward, so a document is scanned in time linear in its
 * length; the grammar of XML-RPC values is `xmlrpc-decode.ts`.
 */
import { XapiError } from './errors.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_LENGTH, type XmlRpcLimits } from './xmlrpc.js';

enum Ch {
  Tab = 9,
  Lf = 10,
  Cr = 13,
  Space = 32,
  Bang = 33,
  Quote = 34,
  Apos = 39,
  Slash = 47,
  Lt = 60,
  Eq = 61,
  Gt = 62,
  Question = 63,
}

export interface Tag {
  name: string;
  /** `<name/>` */
  empty: boolean;
}

function isWs(c: number): boolean {
  return c === Ch.Space || c === Ch.Lf || c === Ch.Tab || c === Ch.Cr;
}

function isNameEnd(c: number): boolean {
  return isWs(c) || c === Ch.Slash || c === Ch.Gt || Number.isNaN(c);
}

const NAMED = new Map<string, string>([
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
]);

export class XmlScanner {
  pos = 0;
  readonly maxDepth: number;

  constructor(
    readonly s: string,
    limits: XmlRpcLimits | undefined,
  ) {
    const maxLength = limits?.maxLength ?? DEFAULT_MAX_LENGTH;
    this.maxDepth = limits?.maxDepth ?? DEFAULT_MAX_DEPTH;
    if (typeof s !== 'string') this.fail('input is not a string');
    if (s.length > maxLength) {
      throw new XapiError(
        'XAPI_LIMIT',
        ['length', String(maxLength)],
        `XML document longer than ${maxLength} characters`,
      );
    }
  }

  fail(what: string): never {
    throw new XapiError(
      'XAPI_PROTOCOL',
      [what, String(this.pos)],
      `bad XML-RPC at ${this.pos}: ${what}`,
    );
  }

  /** Skips whitespace, comments and processing instructions; rejects DOCTYPE. */
  skipMisc(): void {
    const s = this.s;
    for (;;) {
      let c = s.charCodeAt(this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== Ch.Lt) return;
      const next = s.charCodeAt(this.pos + 1);
      if (next === Ch.Question) {
        const end = s.indexOf('?>', this.pos + 2);
        if (end < 0) this.fail('unterminated processing instruction');
        this.pos = end + 2;
      } else if (next === Ch.Bang) {
        if (s.startsWith('<!--', this.pos)) {
          const end = s.indexOf('-->', this.pos + 4);
          if (end < 0) this.fail('unterminated comment');
          this.pos = end + 3;
        } else {
          this.fail('DOCTYPE and other declarations are not accepted');
        }
      } else {
        return;
      }
    }
  }

  /** Reads `<name attr="…">` or `<name/>` at the current position (after skipMisc). */
  openTag(): Tag {
    const s = this.s;
    if (s.charCodeAt(this.pos) !== Ch.Lt) this.fail('expected a start tag');
    const start = ++this.pos;
    while (!isNameEnd(s.charCodeAt(this.pos))) this.pos++;
    if (this.pos === start) this.fail('expected an element name');
    const name = s.slice(start, this.pos);
    if (name.charCodeAt(0) === Ch.Slash) this.fail(`unexpected end tag </${name.slice(1)}>`);
    // attributes: name="..." | name='...' (ignored)
    for (;;) {
      let c = s.charCodeAt(this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c === Ch.Gt) {
        this.pos++;
        return { name, empty: false };
      }
      if (c === Ch.Slash) {
        if (s.charCodeAt(this.pos + 1) !== Ch.Gt) this.fail('expected />');
        this.pos += 2;
        return { name, empty: true };
      }
      if (Number.isNaN(c)) this.fail('unterminated start tag');
      const an = this.pos;
      while (!isNameEnd(c) && c !== Ch.Eq) c = s.charCodeAt(++this.pos);
      if (this.pos === an) this.fail('bad attribute');
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== Ch.Eq) this.fail('expected = in attribute');
      c = s.charCodeAt(++this.pos);
      while (isWs(c)) c = s.charCodeAt(++this.pos);
      if (c !== Ch.Quote && c !== Ch.Apos) this.fail('expected a quoted attribute value');
      const end = s.indexOf(c === Ch.Quote ? '"' : "'", this.pos + 1);
      if (end < 0) this.fail('unterminated attribute value');
      if (s.slice(this.pos + 1, end).includes('<')) this.fail('< in attribute value');
      this.pos = end + 1;
    }
  }

  expectOpen(name: string): boolean {
    this.skipMisc();
    const tag = this.openTag();
    if (tag.name !== name) this.fail(`expected <${name}>, found <${tag.name}>`);
    return tag.empty;
  }

  closeTag(name: string): void {
    this.skipMisc();
    const s = this.s;
    if (!s.startsWith('</', this.pos) || !s.startsWith(name, this.pos + 2)) {
      this.fail(`expected </${name}>`);
    }
    this.pos += 2 + name.length;
    let c = s.charCodeAt(this.pos);
    while (isWs(c)) c = s.charCodeAt(++this.pos);
    if (c !== Ch.Gt) this.fail(`expected </${name}>`);
    this.pos++;
  }

  /** True when the next markup (after misc) is an end tag. */
  atEndTag(): boolean {
    this.skipMisc();
    return this.s.startsWith('</', this.pos);
  }

  /** Character data up to the next tag (entities and CDATA decoded, line ends normalised). */
  text(): string {
    const s = this.s;
    let out = '';
    for (;;) {
      const lt = s.indexOf('<', this.pos);
      if (lt < 0) this.fail('unterminated text');
      if (lt > this.pos) out += this.decodeRaw(s.slice(this.pos, lt));
      this.pos = lt;
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (end < 0) this.fail('unterminated CDATA');
        out += normaliseNewlines(s.slice(lt + 9, end));
        this.pos = end + 3;
      } else if (s.startsWith('<!--', lt)) {
        const end = s.indexOf('-->', lt + 4);
        if (end < 0) this.fail('unterminated comment');
        this.pos = end + 3;
      } else if (s.charCodeAt(lt + 1) === Ch.Question) {
        const end = s.indexOf('?>', lt + 2);
        if (end < 0) this.fail('unterminated processing instruction');
        this.pos = end + 2;
      } else {
        return out;
      }
    }
  }

  decodeRaw(raw: string): string {
    const t = normaliseNewlines(raw);
    let amp = t.indexOf('&');
    if (amp < 0) return t;
    let out = '';
    let from = 0;
    while (amp >= 0) {
      const semi = t.indexOf(';', amp + 1);
      if (semi < 0 || semi - amp > 12) this.fail('bare & in text');
      const ent = t.slice(amp + 1, semi);
      out += t.slice(from, amp) + this.entity(ent);
      from = semi + 1;
      amp = t.indexOf('&', from);
    }
    return out + t.slice(from);
  }

  entity(ent: string): string {
    const named = NAMED.get(ent);
    if (named !== undefined) return named;
    let cp = Number.NaN;
    if (/^#[0-9]{1,7}$/.test(ent)) cp = Number(ent.slice(1));
    else if (/^#x[0-9a-fA-F]{1,6}$/.test(ent)) cp = Number.parseInt(ent.slice(2), 16);
    if (!(cp >= 0 && cp <= 0x10ffff)) this.fail(`bad entity reference &${ent.slice(0, 12)};`);
    return String.fromCodePoint(cp);
  }

  /** Skips to the end of the document, allowing only whitespace, comments and PIs. */
  end(): void {
    this.skipMisc();
    if (this.pos !== this.s.length) this.fail('content after the document element');
  }

  textThenClose(name: string): string {
    const t = this.text();
    this.closeTag(name);
    return t;
  }

  checkDepth(depth: number): void {
    if (depth > this.maxDepth) {
      throw new XapiError(
        'XAPI_LIMIT',
        ['depth', String(this.maxDepth)],
        `XML-RPC value nested deeper than ${this.maxDepth}`,
      );
    }
  }
}

function normaliseNewlines(t: string): string {
  return t.indexOf('\r') < 0 ? t : t.replace(/\r\n?/g, '\n');
}
