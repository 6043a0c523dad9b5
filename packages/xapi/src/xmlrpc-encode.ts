/**
 * XML-RPC encoding as xapi writes it: strings as bare `<value>text</value>`, booleans
 * `<boolean>1</boolean>`, integers `<int>`, other numbers `<double>` (`nan`, `inf`, `-inf`),
 * dates `<dateTime.iso8601>20240101T12:00:00Z`, bytes `<base64>`.
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
