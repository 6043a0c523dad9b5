/**
 * The XML-RPC value model in xapi's dialect, shared by the encoder (`xmlrpc-encode.ts`) and the
 * decoder (`xmlrpc-decode.ts`, over the scanner of `xml-scanner.ts`): the value type, the bounds
 * a decoder enforces, and xapi's date form.
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

/** Largest accepted document by default, in UTF-16 code units. */
export const DEFAULT_MAX_LENGTH = 256 * 1024 * 1024;
/** Deepest nesting of arrays and structs, by default when decoding and always when encoding. */
export const DEFAULT_MAX_DEPTH = 64;

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
