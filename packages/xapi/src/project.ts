/**
 * A JSON-RPC answer of `<class>.get_all_records` decoded keeping only some fields of each
 * record. xapi has no call that lists fewer fields (every record comes whole: ocaml/idl's
 * generated `get_all_records`), and a 5,000-VM pool's VM records decoded whole take some
 * 250 MiB. This decoder walks the answer's bytes and decodes only the values of the fields
 * asked for; every other value is skipped over as bytes, never built.
 *
 * The answer is the JSON-RPC envelope: `{"jsonrpc", "result": {ref: record, …}, "id"}`, or an
 * error instead of the result; every member but the result's records is decoded whole.
 */
import { XapiError } from './errors.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

function bad(why: string): XapiError {
  return new XapiError('XAPI_PROTOCOL', ['bad JSON'], `the answer is not JSON (${why})`);
}

class Walker {
  i = 0;
  constructor(readonly b: Buffer) {}

  ws(): void {
    const b = this.b;
    let i = this.i;
    while (i < b.length) {
      const c = b[i]!;
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      i++;
    }
    this.i = i;
  }

  expect(c: number): void {
    this.ws();
    if (this.b[this.i] !== c) throw bad(`expected '${String.fromCharCode(c)}' at ${this.i}`);
    this.i++;
  }

  /** At a `"`: the index after its closing quote. */
  endOfString(from: number): number {
    const b = this.b;
    let j = from + 1;
    for (;;) {
      const q = b.indexOf(QUOTE, j);
      if (q < 0) throw bad('unterminated string');
      let k = q - 1;
      while (b[k] === BACKSLASH) k--;
      // An even number of backslashes before it: the quote is not escaped.
      if ((q - 1 - k) % 2 === 0) return q + 1;
      j = q + 1;
    }
  }

  /** Skips one value; returns where it started (after white space). */
  skip(): number {
    this.ws();
    const b = this.b;
    const start = this.i;
    const c = b[start];
    if (c === QUOTE) {
      this.i = this.endOfString(start);
      return start;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      let depth = 0;
      let i = start;
      while (i < b.length) {
        const d = b[i]!;
        if (d === QUOTE) {
          i = this.endOfString(i);
          continue;
        }
        if (d === OPEN_OBJECT || d === OPEN_ARRAY) depth++;
        else if (d === CLOSE_OBJECT || d === CLOSE_ARRAY) {
          depth--;
          if (depth === 0) {
            this.i = i + 1;
            return start;
          }
        }
        i++;
      }
      throw bad('unterminated object or array');
    }
    // A number, true, false or null: up to the next delimiter.
    let i = start;
    while (i < b.length) {
      const d = b[i]!;
      if (d === COMMA || d === CLOSE_OBJECT || d === CLOSE_ARRAY || d <= 0x20) break;
      i++;
    }
    if (i === start) throw bad(`expected a value at ${start}`);
    this.i = i;
    return start;
  }

  /** One value, decoded whole. */
  value(): unknown {
    const start = this.skip();
    try {
      return JSON.parse(this.b.toString('utf8', start, this.i));
    } catch {
      throw bad(`bad value at ${start}`);
    }
  }

  /**
   * The members of an object (at `{`): `each` reads each member's value. Its key is decoded
   * when `each` asks (`key()`); `keyBytes` is its length as written, quotes left out, or -1
   * when it holds an escape.
   */
  members(each: (key: () => string, keyBytes: number) => void): void {
    this.expect(OPEN_OBJECT);
    this.ws();
    if (this.b[this.i] === CLOSE_OBJECT) {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.b[this.i] !== QUOTE) throw bad(`expected a string at ${this.i}`);
      const start = this.i;
      const end = this.endOfString(start);
      this.i = end;
      const key = () => {
        const raw = this.b.toString('utf8', start + 1, end - 1);
        return raw.includes('\\')
          ? (JSON.parse(this.b.toString('utf8', start, end)) as string)
          : raw;
      };
      // A key with an escape is decoded whatever its length (-1: its length says nothing).
      let bytes = end - start - 2;
      for (let k = start + 1; k < end - 1; k++)
        if (this.b[k] === BACKSLASH) {
          bytes = -1;
          break;
        }
      this.expect(COLON);
      each(key, bytes);
      this.ws();
      const c = this.b[this.i];
      this.i++;
      if (c === CLOSE_OBJECT) return;
      if (c !== COMMA) throw bad(`expected ',' or '}' at ${this.i - 1}`);
    }
  }
}

/**
 * Decodes a JSON-RPC reply whose result is a map of records, keeping of each record only
 * `fields` (a field the record lacks stays absent). Any other result (an error reply, a
 * result that is not a map) is decoded whole.
 */
export function decodeRecordsReply(body: Buffer, fields: readonly string[]): unknown {
  const keep = new Set(fields);
  // A key whose length no field has is skipped without being decoded.
  const lengths = new Set(fields.map((f) => Buffer.byteLength(f)));
  const w = new Walker(body);
  // No prototype: a member named __proto__ is a member like any other.
  const reply: Record<string, unknown> = Object.create(null);
  w.members((keyOf) => {
    const key = keyOf();
    w.ws();
    if (key !== 'result' || body[w.i] !== OPEN_OBJECT) {
      reply[key] = w.value();
      return;
    }
    const records: Record<string, Record<string, unknown>> = Object.create(null);
    w.members((refOf) => {
      const ref = refOf();
      const rec: Record<string, unknown> = Object.create(null);
      w.ws();
      if (body[w.i] !== OPEN_OBJECT) throw bad(`the record of ${ref} is not an object`);
      w.members((fieldOf, bytes) => {
        const field = bytes < 0 || lengths.has(bytes) ? fieldOf() : null;
        if (field !== null && keep.has(field)) rec[field] = w.value();
        else w.skip();
      });
      records[ref] = rec;
    });
    reply[key] = records;
  });
  w.ws();
  if (w.i !== body.length) throw bad('trailing bytes');
  return reply;
}

/** A record cut down to `fields` (for answers decoded whole: XML-RPC). */
export function pickFields(rec: Record<string, unknown>, fields: readonly string[]) {
  const out: Record<string, unknown> = {};
  for (const f of fields) if (f in rec) out[f] = rec[f];
  return out;
}
