/**
 * Reading records: `<cls>.get_all_records` and `<cls>.get_record`, with the int fields of the
 * typed classes (`INT_FIELDS`) as numbers on both transports (XML-RPC carries xapi's 64-bit
 * ints as strings).
 */
import { XapiError } from './errors.js';
import { decodeRecordsReply, pickFields } from './project.js';
import { INT_FIELDS, type XapiRecordTypes, type XapiRef } from './records.js';
import type { Session } from './session.js';

/** `<cls>.get_all_records` as a Map ref -> record (int fields as numbers). */
export async function getAllRecords<T>(session: Session, cls: string): Promise<Map<string, T>> {
  const all = (await session.call(`${cls}.get_all_records`, [])) as Record<string, T>;
  if (typeof all !== 'object' || all === null || Array.isArray(all)) {
    throw new XapiError('XAPI_PROTOCOL', [cls], `${cls}.get_all_records did not return a map`);
  }
  const out = new Map<string, T>();
  for (const ref of Object.keys(all)) {
    const rec = all[ref]!;
    normaliseRecord(cls, rec);
    out.set(ref, rec);
  }
  return out;
}

/**
 * `<cls>.get_all_records` keeping only `fields` of each record: over JSON-RPC the other
 * fields are skipped while the answer is decoded, never built (project.ts); over XML-RPC
 * the records are decoded whole, then cut down.
 */
export async function getAllRecordsFields<
  C extends keyof XapiRecordTypes,
  K extends keyof XapiRecordTypes[C],
>(
  session: Session,
  cls: C,
  fields: readonly (K & string)[],
): Promise<Map<XapiRef, Pick<XapiRecordTypes[C], K>>> {
  const all = (await session.call(`${cls}.get_all_records`, [], {
    timeoutMs: session.settings.timeoutMs,
    decodeJson: (body) => decodeRecordsReply(body, fields),
  })) as Record<string, Record<string, unknown>>;
  if (typeof all !== 'object' || all === null || Array.isArray(all)) {
    throw new XapiError('XAPI_PROTOCOL', [cls], `${cls}.get_all_records did not return a map`);
  }
  const out = new Map<XapiRef, Pick<XapiRecordTypes[C], K>>();
  for (const ref of Object.keys(all)) {
    const rec = pickFields(all[ref]!, fields);
    normaliseRecord(cls, rec);
    out.set(ref, rec as Pick<XapiRecordTypes[C], K>);
  }
  return out;
}

/** `<cls>.get_record` (int fields as numbers). */
export async function getRecord<T>(session: Session, cls: string, ref: XapiRef): Promise<T> {
  const rec = (await session.call(`${cls}.get_record`, [ref])) as T;
  normaliseRecord(cls, rec);
  return rec;
}

/** int fields arrive as strings over XML-RPC: make them numbers (in place). */
function normaliseRecord(cls: string, rec: unknown): void {
  const fields = INT_FIELDS[cls];
  if (fields === undefined || typeof rec !== 'object' || rec === null) return;
  const r = rec as Record<string, unknown>;
  for (const f of fields) {
    const v = r[f];
    if (typeof v === 'string' && /^-?[0-9]{1,19}$/.test(v)) r[f] = Number(v);
  }
}
