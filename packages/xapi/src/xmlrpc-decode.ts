/**
 * XML-RPC decoding: the grammar of values, method calls and method responses over the scanner
 * of `xml-scanner.ts`. Accepts every XML-RPC scalar type. Hostile input (malformed XML, a
 * DOCTYPE, input longer than `maxLength` characters or nested deeper than `maxDepth`) fails with
 * an {@link XapiError} (`XAPI_PROTOCOL` or `XAPI_LIMIT`) in time linear in the input.
 */
import { XapiError } from './errors.js';
import { XmlScanner } from './xml-scanner.js';
import { isStruct, parseXapiDate, type XmlRpcLimits, type XmlRpcValue } from './xmlrpc.js';

const XML_WS_RE = /^[ \t\n\r]*$/;

/** The XML-RPC grammar: a value, a struct, an array, with the nesting bound. */
class XmlRpcParser extends XmlScanner {
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

const INT_RE = /^[+-]?[0-9]+$/;
const DOUBLE_RE = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;

function parseIntValue(p: XmlScanner, t: string): number {
  const s = t.trim();
  if (!INT_RE.test(s) || s.length > 24) p.fail(`bad integer ${JSON.stringify(s.slice(0, 40))}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) {
    throw new XapiError('XAPI_LIMIT', ['integer', s], `integer ${s} is not exactly representable`);
  }
  return n === 0 ? 0 : n;
}

function parseDouble(p: XmlScanner, t: string): number {
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

function parseBoolean(p: XmlScanner, t: string): boolean {
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

function parseDate(p: XmlScanner, t: string): Date {
  return parseXapiDate(t) ?? p.fail(`bad dateTime ${JSON.stringify(t.slice(0, 40))}`);
}

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function parseBase64(p: XmlScanner, t: string): Uint8Array {
  const s = t.replace(/[\s]+/g, '');
  if (!BASE64_RE.test(s)) p.fail('bad base64');
  const b = Buffer.from(s, 'base64');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Decodes one `<value>…</value>` element (e.g. a `task.result` fragment, an ova.xml). */
export function decodeValue(xml: string, limits?: XmlRpcLimits): XmlRpcValue {
  const p = new XmlRpcParser(xml, limits);
  p.skipMisc();
  const v = p.value(0);
  p.end();
  return v;
}

export function decodeMethodCall(
  xml: string,
  limits?: XmlRpcLimits,
): { method: string; params: XmlRpcValue[] } {
  const p = new XmlRpcParser(xml, limits);
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
  const p = new XmlRpcParser(xml, limits);
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
