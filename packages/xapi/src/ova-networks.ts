import { ovaNetworks, ovaXmlOf, readOva } from './ova.js';
import { isStruct } from './xmlrpc.js';
import { decodeValue } from './xmlrpc-decode.js';

/** An object of class network in an export's `objects`: `<struct><member><name>class</name>…`. */
const NETWORK_CLASS =
  /<name>class<\/name>\s*<value>\s*(?:<string>)?network(?:<\/string>)?\s*<\/value>/g;
const OBJECT_OPENS = /<struct>\s*<member>\s*$/;
const STRUCT_TAG = /<(\/?)struct>/g;

/** Where the struct opened at `start` ends (after its `</struct>`), or -1. */
function structEnd(xml: string, start: number): number {
  STRUCT_TAG.lastIndex = start;
  let depth = 0;
  for (let m = STRUCT_TAG.exec(xml); m; m = STRUCT_TAG.exec(xml)) {
    depth += m[1] ? -1 : 1;
    if (depth === 0) return STRUCT_TAG.lastIndex;
  }
  return -1;
}

/**
 * The networks a metadata export refers to, by name and bridge (what xapi's import matches
 * them by, ocaml/xapi/import.ml): the same answer as `ovaNetworks(readOva(tar))`, without
 * decoding the whole document. Each network object's struct is found by its class member
 * (export.ml writes every object as {class, id, snapshot}, class first) and decoded alone; an
 * export laid out any other way is decoded whole, so the answer never depends on the layout.
 */
export function exportNetworks(tar: Uint8Array): { name: string; bridge: string }[] {
  const xml = ovaXmlOf(tar);
  const whole = () => ovaNetworks(readOva(tar));
  const out: { name: string; bridge: string }[] = [];
  for (const m of xml.matchAll(NETWORK_CLASS)) {
    const before = xml.slice(Math.max(0, m.index - 64), m.index);
    const opens = OBJECT_OPENS.exec(before);
    if (!opens) return whole();
    const start = m.index - before.length + opens.index;
    const end = structEnd(xml, start);
    if (end < 0) return whole();
    let o: unknown;
    try {
      o = decodeValue(`<value>${xml.slice(start, end)}</value>`);
    } catch {
      return whole();
    }
    if (!isStruct(o) || o.class !== 'network') return whole();
    // A struct with a class member but no id is a map inside a snapshot, not an object.
    if (typeof o.id !== 'string') continue;
    const snap = isStruct(o.snapshot) ? o.snapshot : {};
    out.push({ name: String(snap.name_label ?? ''), bridge: String(snap.bridge ?? '') });
  }
  return out;
}
