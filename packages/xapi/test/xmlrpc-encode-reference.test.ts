// The encoder was rewritten for speed (one walk writing either a string or UTF-8 bytes). The
// encoder as it was is kept below, verbatim but for names, as the reference: the new one must
// give the same text, the same bytes and the same errors for every value, so a change of a
// single byte fails here.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFault,
  encodeMethodCall,
  encodeMethodResponse,
  encodeValue,
  escapeTable,
  formatXapiDate,
  writeValue,
  XapiError,
  XmlBytes,
  type XmlRpcValue,
} from '../src/index.js';
import { DEFAULT_MAX_DEPTH } from '../src/xmlrpc.js';

// ---- reference: packages/xapi/src/xmlrpc-encode.ts before the rewrite ----
const REF_ESCAPE_RE = /[&<>\r"]/;
const REF_ESCAPE_ALL_RE = /[&<>\r"]/g;
const REF_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '\r': '&#13;',
  '"': '&quot;',
};
function refEscapeXml(s: string): string {
  return REF_ESCAPE_RE.test(s) ? s.replace(REF_ESCAPE_ALL_RE, (c) => REF_ESCAPES[c]!) : s;
}
function refFormatDouble(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  return String(n);
}
function refEncodeInto(v: XmlRpcValue, out: string[], depth: number): void {
  switch (typeof v) {
    case 'string':
      out.push('<value>', refEscapeXml(v), '</value>');
      return;
    case 'number':
      if (Number.isSafeInteger(v)) out.push('<value><int>', String(v), '</int></value>');
      else out.push('<value><double>', refFormatDouble(v), '</double></value>');
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
        for (const item of v) refEncodeInto(item, out, depth + 1);
        out.push('</data></array></value>');
        return;
      }
      if (v === null) break;
      out.push('<value><struct>');
      for (const key of Object.keys(v)) {
        const item = v[key];
        if (item === undefined) continue;
        out.push('<member><name>', refEscapeXml(key), '</name>');
        refEncodeInto(item, out, depth + 1);
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
function refEncodeValue(v: XmlRpcValue): string {
  const out: string[] = [];
  refEncodeInto(v, out, 0);
  return out.join('');
}
function refEncodeMethodCall(method: string, params: XmlRpcValue[]): string {
  const out: string[] = [
    '<?xml version="1.0"?><methodCall><methodName>',
    refEscapeXml(method),
    '</methodName><params>',
  ];
  for (const p of params) {
    out.push('<param>');
    refEncodeInto(p, out, 0);
    out.push('</param>');
  }
  out.push('</params></methodCall>');
  return out.join('');
}
function refEncodeMethodResponse(value: XmlRpcValue): string {
  const out: string[] = ['<?xml version="1.0"?><methodResponse><params><param>'];
  refEncodeInto(value, out, 0);
  out.push('</param></params></methodResponse>');
  return out.join('');
}
function refEncodeFault(code: number, message: string): string {
  return (
    '<?xml version="1.0"?><methodResponse><fault>' +
    refEncodeValue({ faultCode: Math.trunc(code), faultString: message }) +
    '</fault></methodResponse>'
  );
}
// ---- end of the reference ----

const utf8 = (s: string) => Buffer.from(new TextEncoder().encode(s));

function bytesOf(v: XmlRpcValue, skip = 0): Buffer {
  const out = new XmlBytes(skip);
  writeValue(v, out);
  return Buffer.from(out.bytes());
}

/** What a call throws, as `{ code, params, message }` (or the error's text if not ours). */
function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    if (e instanceof XapiError) return { code: e.code, params: e.params, message: e.message };
    return String(e);
  }
  return 'no error';
}

// Strings made of the chars that matter: each escape, markup-looking text, ASCII, 2- and
// 3-byte UTF-8, surrogate pairs, lone surrogates of both halves, controls and NUL.
const piece = fc.constantFrom(
  '&',
  '<',
  '>',
  '\r',
  '"',
  "'",
  '\n',
  '\t',
  ' ',
  '%',
  '\\',
  '\0',
  'a',
  'Z',
  '9',
  '</value>',
  '&amp;',
  'é',
  'ß',
  '\u07ff',
  '\u0800',
  '€',
  '日本',
  '\uffff',
  '😀',
  '\u{10ffff}',
  '\ud800',
  '\udbff',
  '\udc00',
  '\udfff',
  '\ud83d',
  '\ude00',
);
const text = fc.oneof(
  fc.array(piece, { maxLength: 12 }).map((a) => a.join('')),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.constant(''),
);
const key = fc.oneof(
  text,
  fc.constantFrom('', '0', '12', 'name_label', 'other_config', '__proto__', 'constructor'),
);
const number = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(),
  fc.constantFrom(
    0,
    -0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    -Number.MAX_SAFE_INTEGER - 2,
    1e21,
    1e-7,
    5e-324,
    Number.MAX_VALUE,
  ),
);
const date = fc
  .date({
    min: new Date('0000-01-01T00:00:00Z'),
    max: new Date('9999-12-31T23:59:59Z'),
    noInvalidDate: true,
  })
  .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000));
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  // a view into a bigger buffer: only the view is encoded
  fc
    .tuple(fc.uint8Array({ minLength: 8, maxLength: 40 }), fc.nat(4), fc.nat(4))
    .map(([a, s, e]) => a.subarray(s, a.length - e)),
);
const value: fc.Arbitrary<XmlRpcValue> = fc.letrec<{ v: XmlRpcValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    text,
    number,
    fc.boolean(),
    date,
    bytes,
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(key, fc.option(tie('v'), { nil: undefined }), { maxKeys: 5 }) as fc.Arbitrary<
      Record<string, XmlRpcValue>
    >,
  ),
})).v;
const RUNS = { seed: 19, numRuns: 3000 };

describe('the encoder against its reference copy', () => {
  it('encodeValue gives the same text, writeValue the same UTF-8 bytes', () => {
    fc.assert(
      fc.property(value, (v) => {
        const ref = refEncodeValue(v);
        expect(encodeValue(v)).toBe(ref);
        expect(bytesOf(v).equals(utf8(ref))).toBe(true);
      }),
      RUNS,
    );
  });

  it('method calls, responses and faults are the same text', () => {
    fc.assert(
      fc.property(text, fc.array(value, { maxLength: 4 }), (method, params) => {
        expect(encodeMethodCall(method, params)).toBe(refEncodeMethodCall(method, params));
        for (const p of params) expect(encodeMethodResponse(p)).toBe(refEncodeMethodResponse(p));
      }),
      RUNS,
    );
    fc.assert(
      fc.property(number, text, (code, message) => {
        expect(encodeFault(code, message)).toBe(refEncodeFault(code, message));
      }),
      RUNS,
    );
  });

  it('skipped header bytes are zeros and the value follows them', () => {
    fc.assert(
      fc.property(value, fc.nat(600), (v, skip) => {
        const out = bytesOf(v, skip);
        expect(out.subarray(0, skip).every((b) => b === 0)).toBe(true);
        expect(out.subarray(skip).equals(utf8(refEncodeValue(v)))).toBe(true);
      }),
      { seed: 19, numRuns: 300 },
    );
  });

  it('is the same across its 1 MiB chunk boundaries', () => {
    // Long strings (one bigger than a chunk, with escapes and 4-byte chars at its ends) and
    // many small ones, so that writes land on and across every kind of boundary.
    const big = `😀&${'é€x<'.repeat(300_000)}"\ud800`;
    const many = Array.from({ length: 40_000 }, (_, i) => ({
      [`k${i}&`]: `${'v'.repeat(i % 61)}€${i}\r`,
      n: i % 3 === 0 ? i : i / 7,
      b: new Uint8Array(i % 17).fill(i & 0xff),
      f: i % 2 === 0,
      // plain ASCII, nothing to escape: copied in one step, so also across a chunk's end
      p: `${'plain-'.repeat(1 + (i % 23))}${i}`,
    }));
    const v: XmlRpcValue = { big, many, tail: [big.slice(0, 12345), ''] };
    const ref = refEncodeValue(v);
    expect(encodeValue(v)).toBe(ref);
    for (const skip of [0, 512, 1 << 20, (1 << 20) + 1])
      expect(bytesOf(v, skip).subarray(skip).equals(utf8(ref))).toBe(true);
  });

  it('refuses the same values with the same errors', () => {
    let deep: XmlRpcValue = 'x';
    for (let i = 0; i <= DEFAULT_MAX_DEPTH; i++) deep = i % 2 ? [deep] : { d: deep };
    let deepDate: XmlRpcValue = new Date(0);
    for (let i = 0; i < DEFAULT_MAX_DEPTH; i++) deepDate = [deepDate];
    const bad = [
      null,
      undefined,
      () => 1,
      10n,
      Symbol('s'),
      [1, null],
      { a: [undefined] },
      deep,
      deepDate,
      new Date(Number.NaN),
      new Date('+010000-01-01T00:00:00Z'),
    ] as unknown as XmlRpcValue[];
    for (const v of bad) {
      const ref = thrown(() => refEncodeValue(v));
      expect(ref).not.toBe('no error');
      expect(thrown(() => encodeValue(v))).toEqual(ref);
      expect(thrown(() => bytesOf(v))).toEqual(ref);
      expect(thrown(() => encodeMethodCall('m', [v]))).toEqual(
        thrown(() => refEncodeMethodCall('m', [v])),
      );
    }
  });
});

describe('escapeTable', () => {
  it('writes its replacements, and the other chars as UTF-8', () => {
    const out = new XmlBytes();
    out.text('a b%\n"é😀', escapeTable({ ' ': '%.', '%': '%%', '\n': '%n' }));
    out.text('<&>', escapeTable({}));
    expect(Buffer.from(out.bytes()).toString()).toBe('a%.b%%%n"é😀<&>');
  });

  it('refuses what the writer cannot hold', () => {
    expect(() => escapeTable({ é: 'e' })).toThrow(RangeError);
    expect(() => escapeTable({ ab: 'x' })).toThrow(RangeError);
    expect(() => escapeTable({ a: 'toolong' })).toThrow(RangeError);
    expect(() => escapeTable({ a: 'é' })).toThrow(RangeError);
  });
});
