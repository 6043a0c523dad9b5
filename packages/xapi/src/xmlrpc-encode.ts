/**
 * XML-RPC encoding as xapi writes it: strings as bare `<value>text</value>`, booleans
 * `<boolean>1</boolean>`, integers `<int>`, other numbers `<double>` (`nan`, `inf`, `-inf`),
 * dates `<dateTime.iso8601>20240101T12:00:00Z`, bytes `<base64>`.
 *
 * One walk of the value, two outputs: `encodeValue` & co. build a string (requests, small
 * replies); `writeValue` writes UTF-8 bytes straight into an `XmlBytes` buffer, for the
 * simulator's metadata exports of tens of megabytes, where building the string and then
 * converting it to bytes cost twice the CPU (bench/NOTES.md, "Simulator CPU per backup").
 */
import { XapiError } from './errors.js';
import { DEFAULT_MAX_DEPTH, formatXapiDate, type XmlRpcValue } from './xmlrpc.js';

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

function formatDouble(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  return String(n);
}

/** One `<value>…</value>` element. Struct members whose value is `undefined` are left out. */
export function encodeValue(v: XmlRpcValue): string {
  const out = new XmlParts();
  writeInto(v, out, 0);
  return out.join();
}

export function encodeMethodCall(method: string, params: XmlRpcValue[]): string {
  const out = new XmlParts();
  out.ascii('<?xml version="1.0"?><methodCall><methodName>');
  out.text(method);
  out.ascii('</methodName><params>');
  for (const p of params) {
    out.ascii('<param>');
    writeInto(p, out, 0);
    out.ascii('</param>');
  }
  out.ascii('</params></methodCall>');
  return out.join();
}

export function encodeMethodResponse(value: XmlRpcValue): string {
  const out = new XmlParts();
  out.ascii('<?xml version="1.0"?><methodResponse><params><param>');
  writeInto(value, out, 0);
  out.ascii('</param></params></methodResponse>');
  return out.join();
}

export function encodeFault(code: number, message: string): string {
  return (
    '<?xml version="1.0"?><methodResponse><fault>' +
    encodeValue({ faultCode: Math.trunc(code), faultString: message }) +
    '</fault></methodResponse>'
  );
}

const CHUNK = 1 << 20;

/** Where the encoder writes: markup (`ascii`, taken as it is) and text (`text`, escaped). */
interface XmlSink {
  ascii(s: string): void;
  text(s: string): void;
}

/** The string form: pieces joined at the end. */
class XmlParts implements XmlSink {
  private readonly parts: string[] = [];
  ascii(s: string): void {
    this.parts.push(s);
  }
  text(s: string): void {
    this.parts.push(escapeXml(s));
  }
  join(): string {
    return this.parts.join('');
  }
}

/**
 * What `XmlBytes.text` writes in place of some ASCII chars: `table[c]`, when set, for char
 * code `c` (at most 6 chars each). Made with `escapeTable`.
 */
export type EscapeTable = readonly (string | undefined)[];

export function escapeTable(escapes: Record<string, string>): EscapeTable {
  const table: (string | undefined)[] = new Array(128).fill(undefined);
  for (const [c, e] of Object.entries(escapes)) {
    const code = c.charCodeAt(0);
    if (c.length !== 1 || code >= 0x80 || e.length > 6 || /[^\x20-\x7e]/.test(e))
      throw new RangeError(`bad escape ${JSON.stringify(c)} -> ${JSON.stringify(e)}`);
    table[code] = e;
  }
  return table;
}

/** The escapes of `escapeXml`. */
const XML_ESCAPES = escapeTable(ESCAPES);

/** Per table, what a string must not hold to be copied as it is: a char it escapes, or non-ASCII. */
const needsWork = new WeakMap<EscapeTable, RegExp>();
function workIn(escapes: EscapeTable): RegExp {
  let re = needsWork.get(escapes);
  if (!re) {
    let chars = '';
    escapes.forEach((e, c) => {
      if (e !== undefined) chars += `\\x${c.toString(16).padStart(2, '0')}`;
    });
    re = new RegExp(`[${chars}\\u0080-\\uffff]`);
    needsWork.set(escapes, re);
  }
  return re;
}

/**
 * From this length on, `text` first asks whether a string is plain ASCII with nothing to
 * escape, and then copies it natively: most strings of a record are (uuids, refs, names), and
 * the char-by-char loop is slow until V8 has optimised it, as in a process just started (the
 * simulator's first export).
 */
const PLAIN_MIN = 8;

/**
 * A growing UTF-8 byte buffer for XML. `ascii` copies markup as it is (every char < 0x80);
 * `text` writes a string escaped (as `escapeXml` does, unless given another table) and
 * UTF-8 encoded as TextEncoder does (a lone surrogate becomes U+FFFD), in one pass.
 */
export class XmlBytes implements XmlSink {
  private readonly full: Uint8Array[] = [];
  private fullBytes = 0;
  private buf: Buffer = Buffer.allocUnsafe(0);
  private at = 0;

  /** `skip` zero bytes are left at the start (room for a header the caller writes later). */
  constructor(skip = 0) {
    this.zeros(skip);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.fullBytes + this.at;
  }

  /**
   * The current chunk, with room for `n` more bytes. Chunks of 1 MiB (or more for one big
   * write), joined once by `bytes()`: growing one buffer by doubling copied and zeroed about
   * three times the output.
   */
  private room(n: number): Buffer {
    if (this.at + n <= this.buf.length) return this.buf;
    if (this.at > 0) this.full.push(this.buf.subarray(0, this.at));
    this.fullBytes += this.at;
    this.buf = Buffer.allocUnsafe(Math.max(CHUNK, n));
    this.at = 0;
    return this.buf;
  }

  /** Appends `n` zero bytes. */
  zeros(n: number): void {
    this.room(n).fill(0, this.at, this.at + n);
    this.at += n;
  }

  ascii(s: string): void {
    const b = this.room(s.length);
    let at = this.at;
    for (let i = 0; i < s.length; i++) b[at++] = s.charCodeAt(i);
    this.at = at;
  }

  text(s: string, escapes: EscapeTable = XML_ESCAPES): void {
    if (s.length >= PLAIN_MIN && !workIn(escapes).test(s)) {
      const b = this.room(s.length); // may start a new chunk: `at` is read after it
      this.at += b.write(s, this.at, 'latin1');
      return;
    }
    // 6 bytes is the most one UTF-16 unit can take (an escape; a surrogate pair takes 4 for 2).
    const b = this.room(s.length * 6);
    let at = this.at;
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) {
        const e = escapes[c];
        if (e === undefined) b[at++] = c;
        else for (let j = 0; j < e.length; j++) b[at++] = e.charCodeAt(j);
      } else if (c < 0x800) {
        b[at++] = 0xc0 | (c >> 6);
        b[at++] = 0x80 | (c & 0x3f);
      } else {
        if (c >= 0xd800 && c <= 0xdfff) {
          const lo = c <= 0xdbff && i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            const cp = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
            b[at++] = 0xf0 | (cp >> 18);
            b[at++] = 0x80 | ((cp >> 12) & 0x3f);
            b[at++] = 0x80 | ((cp >> 6) & 0x3f);
            b[at++] = 0x80 | (cp & 0x3f);
            i++;
            continue;
          }
          c = 0xfffd;
        }
        b[at++] = 0xe0 | (c >> 12);
        b[at++] = 0x80 | ((c >> 6) & 0x3f);
        b[at++] = 0x80 | (c & 0x3f);
      }
    }
    this.at = at;
  }

  /** All the bytes written, in one new buffer (the skipped ones included). */
  bytes(): Buffer {
    return Buffer.concat([...this.full, this.buf.subarray(0, this.at)], this.length);
  }
}

/** Writes `encodeValue(v)` to `out` as UTF-8: the same bytes, the same errors. */
export function writeValue(v: XmlRpcValue, out: XmlBytes): void {
  writeInto(v, out, 0);
}

function writeInto(v: XmlRpcValue, out: XmlSink, depth: number): void {
  switch (typeof v) {
    case 'string':
      out.ascii('<value>');
      out.text(v);
      out.ascii('</value>');
      return;
    case 'number':
      if (Number.isSafeInteger(v)) out.ascii(`<value><int>${v}</int></value>`);
      else out.ascii(`<value><double>${formatDouble(v)}</double></value>`);
      return;
    case 'boolean':
      out.ascii(v ? '<value><boolean>1</boolean></value>' : '<value><boolean>0</boolean></value>');
      return;
    case 'object': {
      if (depth >= DEFAULT_MAX_DEPTH) {
        throw new XapiError('XAPI_LIMIT', ['depth'], 'value nested too deeply to encode');
      }
      if (v instanceof Date) {
        out.ascii(`<value><dateTime.iso8601>${formatXapiDate(v)}</dateTime.iso8601></value>`);
        return;
      }
      if (v instanceof Uint8Array) {
        const b64 = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
        out.ascii(`<value><base64>${b64}</base64></value>`);
        return;
      }
      if (Array.isArray(v)) {
        out.ascii('<value><array><data>');
        for (const item of v) writeInto(item, out, depth + 1);
        out.ascii('</data></array></value>');
        return;
      }
      if (v === null) break;
      out.ascii('<value><struct>');
      for (const key of Object.keys(v)) {
        const item = v[key];
        if (item === undefined) continue;
        out.ascii('<member><name>');
        out.text(key);
        out.ascii('</name>');
        writeInto(item, out, depth + 1);
        out.ascii('</member>');
      }
      out.ascii('</struct></value>');
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
