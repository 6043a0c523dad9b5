import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeMethodCall,
  decodeMethodResponse,
  decodeValue,
  encodeFault,
  encodeMethodCall,
  encodeMethodResponse,
  encodeValue,
  formatXapiDate,
  XapiError,
  type XmlRpcValue,
} from '../src/index.js';

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof XapiError) return e.code;
    throw e;
  }
  throw new Error('did not throw');
}

const key = fc.string({ maxLength: 12, unit: 'binary' });
const value: fc.Arbitrary<XmlRpcValue> = fc.letrec<{ v: XmlRpcValue }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double(),
    fc.boolean(),
    fc
      .date({
        min: new Date('0000-01-01T00:00:00Z'),
        max: new Date('9999-12-31T23:59:59Z'),
        noInvalidDate: true,
      })
      .map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000)),
    fc.uint8Array({ maxLength: 20 }),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(key, tie('v'), { maxKeys: 4 }),
  ),
})).v;

/** Normalise what XML-RPC cannot tell apart: -0 and 0; Uint8Array views and Buffers. */
function norm(v: XmlRpcValue): unknown {
  if (typeof v === 'number') return Object.is(v, -0) ? 0 : v;
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (v instanceof Date) return { date: v.getTime() };
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(o, k, { value: norm(v[k]!), enumerable: true });
    }
    return o;
  }
  return v;
}

describe('encodeValue', () => {
  it('writes xapi style', () => {
    expect(encodeValue('a<b&c')).toBe('<value>a&lt;b&amp;c</value>');
    expect(encodeValue(true)).toBe('<value><boolean>1</boolean></value>');
    expect(encodeValue(false)).toBe('<value><boolean>0</boolean></value>');
    expect(encodeValue(42)).toBe('<value><int>42</int></value>');
    expect(encodeValue(1.5)).toBe('<value><double>1.5</double></value>');
    expect(encodeValue(new Date(Date.UTC(2024, 0, 2, 3, 4, 5)))).toBe(
      '<value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value>',
    );
    expect(encodeValue(new Uint8Array([1, 2, 3]))).toBe('<value><base64>AQID</base64></value>');
    expect(encodeValue(['x', { k: 'v' }])).toBe(
      '<value><array><data><value>x</value><value><struct><member><name>k</name><value>v</value></member></struct></value></data></array></value>',
    );
  });

  it('refuses values XML-RPC cannot carry', () => {
    expect(codeOf(() => encodeValue(null as unknown as string))).toBe('XAPI_INVALID_ARGUMENT');
    expect(codeOf(() => encodeValue(10n as unknown as string))).toBe('XAPI_INVALID_ARGUMENT');
    expect(codeOf(() => encodeValue(new Date(Number.NaN)))).toBe('XAPI_INVALID_ARGUMENT');
    const cyclic: { [k: string]: XmlRpcValue } = {};
    cyclic.self = cyclic;
    expect(codeOf(() => encodeValue(cyclic))).toBe('XAPI_LIMIT');
  });
});

describe('decodeValue', () => {
  it('reads every scalar type', () => {
    expect(decodeValue('<value>bare &amp; &#65;&#x42; text</value>')).toBe('bare & AB text');
    expect(decodeValue('<value/>')).toBe('');
    expect(decodeValue('<value></value>')).toBe('');
    expect(decodeValue('<value>  </value>')).toBe('  ');
    expect(decodeValue('<value><string>s</string></value>')).toBe('s');
    expect(decodeValue('<value><string/></value>')).toBe('');
    expect(decodeValue('<value> <i4>-7</i4> </value>')).toBe(-7);
    expect(decodeValue('<value><int>12</int></value>')).toBe(12);
    expect(decodeValue('<value><i8>10737418240</i8></value>')).toBe(10737418240);
    expect(decodeValue('<value><double>-1.25e2</double></value>')).toBe(-125);
    expect(decodeValue('<value><double>nan</double></value>')).toBeNaN();
    expect(decodeValue('<value><boolean>1</boolean></value>')).toBe(true);
    expect(decodeValue('<value><boolean>0</boolean></value>')).toBe(false);
    expect(decodeValue('<value><nil/></value>')).toBe('');
    expect(decodeValue('<value><base64>AQI=\n</base64></value>')).toEqual(new Uint8Array([1, 2]));
    expect(
      (
        decodeValue(
          '<value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value>',
        ) as Date
      ).toISOString(),
    ).toBe('2024-01-02T03:04:05.000Z');
    expect(
      (
        decodeValue(
          '<value><dateTime.iso8601>2024-01-02T03:04:05+01:00</dateTime.iso8601></value>',
        ) as Date
      ).toISOString(),
    ).toBe('2024-01-02T02:04:05.000Z');
    expect(
      decodeValue('<value><dateTime.iso8601>19700101T00:00:00Z</dateTime.iso8601></value>'),
    ).toEqual(new Date(0));
  });

  it('reads structs, arrays, comments, CDATA, CRLF and an XML declaration', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\r\n<!-- c --><value>
      <struct>
        <member><name>a</name><value><array><data><value>1</value><value><int>2</int></value></data></array></value></member>
        <member><name>b</name><value><struct/></value></member>
        <member><name>c</name><value><array><data/></array></value></member>
        <member><name>d</name><value><![CDATA[<raw>&]]>x</value></member>
        <member><name>e</name><value>l1\r\nl2\rl3</value></member>
        <member><name>__proto__</name><value>p</value></member>
      </struct>
    </value>\n`;
    const v = decodeValue(xml) as Record<string, XmlRpcValue>;
    expect(v.a).toEqual(['1', 2]);
    expect(v.b).toEqual({});
    expect(v.c).toEqual([]);
    expect(v.d).toBe('<raw>&x');
    expect(v.e).toBe('l1\nl2\nl3');
    expect(Object.keys(v)).toContain('__proto__');
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).p).toBeUndefined();
  });

  it.each([
    ['', 'XAPI_PROTOCOL'],
    ['<value>', 'XAPI_PROTOCOL'],
    ['<value>x</valuex>', 'XAPI_PROTOCOL'],
    ['<value>x</value><value>y</value>', 'XAPI_PROTOCOL'],
    ['<value>a & b</value>', 'XAPI_PROTOCOL'],
    ['<value>&bogus;</value>', 'XAPI_PROTOCOL'],
    ['<value>&#x110000;</value>', 'XAPI_PROTOCOL'],
    ['<value><int>1.5</int></value>', 'XAPI_PROTOCOL'],
    ['<value><int>99999999999999999999</int></value>', 'XAPI_LIMIT'],
    ['<value><double>1e</double></value>', 'XAPI_PROTOCOL'],
    ['<value><boolean>2</boolean></value>', 'XAPI_PROTOCOL'],
    ['<value><base64>@@@@</base64></value>', 'XAPI_PROTOCOL'],
    ['<value><dateTime.iso8601>20241301T00:00:00Z</dateTime.iso8601></value>', 'XAPI_PROTOCOL'],
    ['<value><dateTime.iso8601>20240230T00:00:00Z</dateTime.iso8601></value>', 'XAPI_PROTOCOL'],
    ['<value><float>1</float></value>', 'XAPI_PROTOCOL'],
    ['<value>text<int>1</int></value>', 'XAPI_PROTOCOL'],
    ['<value><struct><member><value>1</value></member></struct></value>', 'XAPI_PROTOCOL'],
    ['<value><array><value>1</value></array></value>', 'XAPI_PROTOCOL'],
    ['<!DOCTYPE x [<!ENTITY a "aaaa">]><value>&a;</value>', 'XAPI_PROTOCOL'],
    ['<value a="1<2">x</value>', 'XAPI_PROTOCOL'],
  ])('rejects %j with %s', (xml, code) => {
    expect(codeOf(() => decodeValue(xml))).toBe(code);
  });

  it('bounds depth and size', () => {
    const deep = `${'<value><array><data>'.repeat(100)}${'</data></array></value>'.repeat(100)}`;
    expect(codeOf(() => decodeValue(deep))).toBe('XAPI_LIMIT');
    const ok = `${'<value><array><data>'.repeat(10)}${'</data></array></value>'.repeat(10)}`;
    expect(decodeValue(ok, { maxDepth: 10 })).toBeTruthy();
    expect(codeOf(() => decodeValue(ok, { maxDepth: 9 }))).toBe('XAPI_LIMIT');
    expect(codeOf(() => decodeValue(`<value>${'x'.repeat(100)}</value>`, { maxLength: 50 }))).toBe(
      'XAPI_LIMIT',
    );
  });

  it('fails fast on large hostile inputs (no quadratic paths)', () => {
    const n = 200_000;
    const inputs = [
      `<value a="1"${' b="2"'.repeat(n)}`,
      `<value>${'&amp'.repeat(n)}`,
      `<value>${'<!--'.repeat(n)}`,
      `<value><struct>${'<member><name>k</name><value>v</value></member>'.repeat(n)}`,
      `${'<?x?>'.repeat(n)}`,
    ];
    const t0 = performance.now();
    for (const xml of inputs)
      expect(['XAPI_PROTOCOL', 'XAPI_LIMIT']).toContain(codeOf(() => decodeValue(xml)));
    // generous bound: linear parsing takes milliseconds; a quadratic path takes minutes
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('never throws anything but XapiError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          decodeValue(s);
        } catch (e) {
          expect(e).toBeInstanceOf(XapiError);
        }
      }),
      { numRuns: 500 },
    );
    // mutated valid documents
    const base = encodeValue({ a: [1, 'x', true, 1.5], b: { c: new Uint8Array([1]) } });
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.string({ maxLength: 3 }), (at, ins) => {
        try {
          decodeValue(base.slice(0, at) + ins + base.slice(at + 1));
        } catch (e) {
          expect(e).toBeInstanceOf(XapiError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('round trips', () => {
  it('decodeValue(encodeValue(v)) equals v', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(norm(decodeValue(encodeValue(v)))).toEqual(norm(v));
      }),
      { numRuns: 400 },
    );
  });

  it('method calls and responses', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.]{0,30}$/),
        fc.array(value, { maxLength: 4 }),
        (method, params) => {
          const call = decodeMethodCall(encodeMethodCall(method, params));
          expect(call.method).toBe(method);
          expect(call.params.map(norm)).toEqual(params.map(norm));
          const r = params[0] ?? 'x';
          expect(norm(decodeMethodResponse(encodeMethodResponse(r)))).toEqual(norm(r));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('formats dates as xapi does', () => {
    const d = new Date(0);
    d.setUTCFullYear(5, 0, 1);
    expect(formatXapiDate(d)).toBe('00050101T00:00:00Z');
    expect(decodeValue(encodeValue(d))).toEqual(d);
  });
});

describe('method calls and responses', () => {
  it('decodes a call written by another client (Python xmlrpc.client style)', () => {
    const xml = `<?xml version='1.0'?>
<methodCall>
<methodName>session.login_with_password</methodName>
<params>
<param>
<value><string>root</string></value>
</param>
<param>
<value><string>secret</string></value>
</param>
</params>
</methodCall>
`;
    expect(decodeMethodCall(xml)).toEqual({
      method: 'session.login_with_password',
      params: ['root', 'secret'],
    });
    expect(decodeMethodCall('<methodCall><methodName>m</methodName></methodCall>')).toEqual({
      method: 'm',
      params: [],
    });
    expect(
      decodeMethodCall('<methodCall><methodName>m</methodName><params/></methodCall>'),
    ).toEqual({ method: 'm', params: [] });
  });

  it('throws XMLRPC_FAULT on a fault and keeps code and string', () => {
    try {
      decodeMethodResponse(encodeFault(-32601, 'no such <method>'));
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(XapiError);
      expect((e as XapiError).code).toBe('XMLRPC_FAULT');
      expect((e as XapiError).params).toEqual(['-32601', 'no such <method>']);
    }
  });

  it('decodes an xapi Status struct', () => {
    const xml = encodeMethodResponse({
      Status: 'Failure',
      ErrorDescription: ['HANDLE_INVALID', 'VM', 'OpaqueRef:x'],
    });
    expect(decodeMethodResponse(xml)).toEqual({
      Status: 'Failure',
      ErrorDescription: ['HANDLE_INVALID', 'VM', 'OpaqueRef:x'],
    });
  });

  it.each([
    '<methodResponse/>',
    '<methodResponse><params></params></methodResponse>',
    '<methodResponse><params><param><value>1</value></param></params>',
    '<methodCall><methodName>m</methodName></methodCall>',
    '<html>404</html>',
  ])('rejects malformed response %j', (xml) => {
    expect(codeOf(() => decodeMethodResponse(xml))).toBe('XAPI_PROTOCOL');
  });
});
