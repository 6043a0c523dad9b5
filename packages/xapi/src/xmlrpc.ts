/**
 * XML-RPC codec in xapi's dialect, with a small strict bounded parser of its own.
 *
 * Encoding follows xapi: strings as bare `<value>text</value>`, booleans `<boolean>1</boolean>`,
 * integers `<int>`, other numbers `<double>`, dates `<dateTime.iso8601>20240101T12:00:00Z`.
 * Decoding accepts every XML-RPC scalar type. Hostile input (malformed XML, a DOCTYPE, input
 * longer than `maxLength` characters or nested deeper than `maxDepth`) fails with an
 * {@link XapiError} (`XAPI_PROTOCOL` or `XAPI_LIMIT`) in time linear in the input.
 */
import { XapiError } from './errors.js';

export type XmlRpcValue =
  | string
  | number
  | boolean
  | Date
  | Uint8Array
  | XmlRpcValue[]
  | { [key: string]: XmlRpcValue };

export interface XmlRpcLimits {
  /** Largest accepted document, in UTF-16 code units (default 256 MiB). */
  maxLength?: number;
  /** Deepest accepted nesting of arrays and structs (default 64). */
  maxDepth?: number;
}

const DEFAULT_MAX_LENGTH = 256 * 1024 * 1024;
const DEFAULT_MAX_DEPTH = 64;

// ---------------------------------------------------------------------------------------------
// Encoding

const ESCAPE_RE = /[&<>\r"]/;
const ESCAPE_ALL_RE = /[&<>\r"]/g;
const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '\r': '&#13;',
  '"': '&quot;',
};

/** Escapes text for XML element content and attribute values. */
export function escapeXml(s: string): string {
  return ESCAPE_RE.test(s) ? s.replace(ESCAPE_ALL_RE, (c) => ESCAPES[c]!) : s;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** xapi's date form: `YYYYMMDDTHH:MM:SSZ` (UTC, whole seconds). */
export function formatXapiDate(d: Date): string {
  const t = d.getTime();
  if (!Number.isFinite(t)) {
    throw new XapiError('XAPI_INVALID_ARGUMENT', ['Invalid Date'], 'cannot encode an invalid Date');
  }
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) {
    throw new XapiError('XAPI_INVALID_ARGUMENT', [String(y)], 'year out of range 0..9999');
  }
  return (
    `${pad(y, 4)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCDate(), 2)}T` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}Z`
  );
}

function formatDouble(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  return String(n);
}

function encodeInto(v: XmlRpcValue, out: string[], depth: number): void {
  switch (typeof v) {
    case 'string':
      out.push('<value>', escapeXml(v), '</value>');
      return;
    case 'number':
      if (Number.isSafeInteger(v)) out.push('<value><int>', String(v), '</int></value>');
      else out.push('<value><double>', formatDouble(v), '</double></value>');
      return;
    case 'boolean':
      out.push(v ? '<value><boolean>1</boolean></value>' : '<value><boolean>0</boolean></value>');
      return;
    case 'object': {
      if (depth >= DEFAULT_MAX_DEPTH) {
        throw new XapiError('XAPI_LIMIT', ['depth'], 'value nested too deeply to encode');
      }
      if (v instanceof Date) {
        out.push('<value><dateTime.iso8601>', formatXapiDate(v), '</dateTime.iso8601></value>');
        return;
      }
      if (v instanceof Uint8Array) {
        const b64 = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
        out.push('<value><base64>', b64, '</base64></value>');
        return;
      }
      if (Array.isArray(v)) {
        out.push('<value><array><data>');
        for (const item of v) encodeInto(item, out, depth + 1);
        out.push('</data></array></value>');
        return;
      }
      if (v === null) break;
      out.push('<value><struct>');
      for (const key of Object.keys(v)) {
        const item = v[key];
        if (item === undefined) continue;
        out.push('<member><name>', escapeXml(key), '</name>');
        encodeInto(item, out, depth + 1);
        out.push('</member>');
      }
      out.push('</struct></value>');
      return;
    }
    default:
      break;
  }
  throw new XapiError(
    'XAPI_INVALID_ARGUMENT',
    [v === null ? 'null' : typeof v],
    `cannot encode ${v === null ? 'null' : typeof v} as XML-RPC`,
  );
}

/** One `<value>…</value>` element. Struct members whose value is `undefined` are left out. */
export function encodeValue(v: XmlRpcValue): string {
  const out: string[] = [];
  encodeInto(v, out, 0);
  return out.join('');
}

export function encodeMethodCall(method: string, params: XmlRpcValue[]): string {
  const out: string[] = [
    '<?xml version="1.0"?><methodCall><methodName>',
    escapeXml(method),
    '</methodName><params>',
  ];
  for (const p of params) {
    out.push('<param>');
    encodeInto(p, out, 0);
    out.push('</param>');
  }
  out.push('</params></methodCall>');
  return out.join('');
}

export function encodeMethodResponse(value: XmlRpcValue): string {
  const out: string[] = ['<?xml version="1.0"?><methodResponse><params><param>'];
  encodeInto(value, out, 0);
  out.push('</param></params></methodResponse>');
  return out.join('');
}

export function encodeFault(code: number, message: string): string {
  return (
    '<?xml version="1.0"?><methodResponse><fault>' +
    encodeValue({ faultCode: Math.trunc(code), faultString: message }) +
    '</fault></methodResponse>'
  );
}

// ---------------------------------------------------------------------------------------------
// Parsing: a pull parser over the string, specialised for the XML-RPC grammar.

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

interface Tag {
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

const XML_WS_RE = /^[ \t\n\r]*$/;
const NAMED = new Map<string, string>([
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
]);

class Parser {
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

  /** Parses `<value>…</value>` starting at the current position. */
  value(depth: number): XmlRpcValue {
    if (this.expectOpen('value')) return '';
    const s = this.s;
    // Bare string, or whitespace before a typed element.
    const lead = this.text();
    if (s.startsWith('</', this.pos)) {
      this.closeTag('value');
      return lead;
    }
    if (!XML_WS_RE.test(lead)) this.fail('text mixed with a typed value');
    const tag = this.openTag();
    let v: XmlRpcValue;
    switch (tag.name) {
      case 'string':
        v = tag.empty ? '' : this.textThenClose('string');
        break;
      case 'int':
      case 'i4':
      case 'i8':
        v = parseIntValue(this, tag.empty ? '' : this.textThenClose(tag.name));
        break;
      case 'double':
        v = parseDouble(this, tag.empty ? '' : this.textThenClose('double'));
        break;
      case 'boolean':
        v = parseBoolean(this, tag.empty ? '' : this.textThenClose('boolean'));
        break;
      case 'dateTime.iso8601':
        v = parseDate(this, tag.empty ? '' : this.textThenClose(tag.name));
        break;
      case 'base64':
        v = parseBase64(this, tag.empty ? '' : this.textThenClose('base64'));
        break;
      case 'nil':
        if (!tag.empty) this.closeTag('nil');
        v = '';
        break;
      case 'struct':
        v = tag.empty ? {} : this.struct(depth + 1);
        break;
      case 'array':
        v = tag.empty ? [] : this.array(depth + 1);
        break;
      default:
        this.fail(`unknown value type <${tag.name}>`);
    }
    this.closeTag('value');
    return v;
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

  struct(depth: number): { [key: string]: XmlRpcValue } {
    this.checkDepth(depth);
    const o: { [key: string]: XmlRpcValue } = {};
    while (!this.atEndTag()) {
      if (this.expectOpen('member')) this.fail('empty <member/>');
      const name = this.expectOpen('name') ? '' : this.textThenClose('name');
      const v = this.value(depth);
      this.closeTag('member');
      if (name === '__proto__') {
        Object.defineProperty(o, name, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      } else {
        o[name] = v;
      }
    }
    this.closeTag('struct');
    return o;
  }

  array(depth: number): XmlRpcValue[] {
    this.checkDepth(depth);
    const out: XmlRpcValue[] = [];
    if (!this.expectOpen('data')) {
      while (!this.atEndTag()) out.push(this.value(depth));
      this.closeTag('data');
    }
    this.closeTag('array');
    return out;
  }
}

function normaliseNewlines(t: string): string {
  return t.indexOf('\r') < 0 ? t : t.replace(/\r\n?/g, '\n');
}

const INT_RE = /^[+-]?[0-9]+$/;
const DOUBLE_RE = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

function parseIntValue(p: Parser, t: string): number {
  const s = t.trim();
  if (!INT_RE.test(s) || s.length > 24) p.fail(`bad integer ${JSON.stringify(s.slice(0, 40))}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) {
    throw new XapiError('XAPI_LIMIT', ['integer', s], `integer ${s} is not exactly representable`);
  }
  return n === 0 ? 0 : n;
}

function parseDouble(p: Parser, t: string): number {
  const s = t.trim();
  if (DOUBLE_RE.test(s) && s.length <= 400) return Number(s);
  switch (s.toLowerCase()) {
    case 'nan':
    case '-nan':
      return Number.NaN;
    case 'inf':
    case '+inf':
    case 'infinity':
      return Number.POSITIVE_INFINITY;
    case '-inf':
    case '-infinity':
      return Number.NEGATIVE_INFINITY;
    default:
      return p.fail(`bad double ${JSON.stringify(s.slice(0, 40))}`);
  }
}

function parseBoolean(p: Parser, t: string): boolean {
  switch (t.trim()) {
    case '1':
    case 'true':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      return p.fail('bad boolean');
  }
}

const DATE_RE =
  /^([0-9]{4})-?([0-9]{2})-?([0-9]{2})T([0-9]{2}):?([0-9]{2}):?([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?$/;

/** Parses xapi's `20240101T12:00:00Z` and ISO 8601 forms; no zone means UTC. */
export function parseXapiDate(text: string): Date | undefined {
  const m = DATE_RE.exec(text.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se, frac, zone] = m;
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(se) > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), month - 1, day);
  if (date.getUTCDate() !== day) return undefined;
  const ms = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  date.setUTCHours(Number(h), Number(mi), Number(se), ms);
  if (zone && zone !== 'Z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const z = zone.slice(1).replace(':', '');
    date.setTime(
      date.getTime() - sign * (Number(z.slice(0, 2)) * 60 + Number(z.slice(2))) * 60_000,
    );
  }
  return date;
}

function parseDate(p: Parser, t: string): Date {
  return parseXapiDate(t) ?? p.fail(`bad dateTime ${JSON.stringify(t.slice(0, 40))}`);
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseBase64(p: Parser, t: string): Uint8Array {
  const s = t.replace(/[\s]+/g, '');
  if (!BASE64_RE.test(s)) p.fail('bad base64');
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Decodes one `<value>…</value>` element (e.g. a `task.result` fragment, an ova.xml). */
export function decodeValue(xml: string, limits?: XmlRpcLimits): XmlRpcValue {
  const p = new Parser(xml, limits);
  p.skipMisc();
  const v = p.value(0);
  p.end();
  return v;
}

export function decodeMethodCall(
  xml: string,
  limits?: XmlRpcLimits,
): { method: string; params: XmlRpcValue[] } {
  const p = new Parser(xml, limits);
  if (p.expectOpen('methodCall')) p.fail('empty <methodCall/>');
  const method = p.expectOpen('methodName') ? '' : p.textThenClose('methodName').trim();
  if (method === '') p.fail('empty method name');
  const params: XmlRpcValue[] = [];
  if (!p.atEndTag()) {
    if (!p.expectOpen('params')) {
      while (!p.atEndTag()) {
        if (p.expectOpen('param')) p.fail('empty <param/>');
        params.push(p.value(0));
        p.closeTag('param');
      }
      p.closeTag('params');
    }
  }
  p.closeTag('methodCall');
  p.end();
  return { method, params };
}

/**
 * Decodes a `<methodResponse>`: returns the single param's value, or throws an
 * {@link XapiError} `XMLRPC_FAULT` with params `[faultCode, faultString]` for a `<fault>`.
 */
export function decodeMethodResponse(xml: string, limits?: XmlRpcLimits): XmlRpcValue {
  const p = new Parser(xml, limits);
  if (p.expectOpen('methodResponse')) p.fail('empty <methodResponse/>');
  p.skipMisc();
  const tag = p.openTag();
  if (tag.name === 'fault') {
    if (tag.empty) p.fail('empty <fault/>');
    const f = p.value(0);
    p.closeTag('fault');
    p.closeTag('methodResponse');
    p.end();
    const code = isStruct(f) ? f.faultCode : undefined;
    const message = isStruct(f) ? f.faultString : undefined;
    throw new XapiError(
      'XMLRPC_FAULT',
      [String(code ?? ''), String(message ?? '')],
      `XML-RPC fault ${String(code ?? '')}: ${String(message ?? '')}`,
    );
  }
  if (tag.name !== 'params' || tag.empty) p.fail('expected <params> or <fault>');
  if (p.expectOpen('param')) p.fail('empty <param/>');
  const v = p.value(0);
  p.closeTag('param');
  p.closeTag('params');
  p.closeTag('methodResponse');
  p.end();
  return v;
}

/** True for a plain XML-RPC struct (not an array, Date or byte array). */
export function isStruct(v: unknown): v is { [key: string]: XmlRpcValue } {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Date) &&
    !(v instanceof Uint8Array)
  );
}
