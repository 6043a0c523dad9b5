/**
 * The second half of ova-split.ts: from the index of an `all=true` export's objects, each
 * VM's export, built when it is taken: the walk from the VM over the references that
 * `update_table` follows, and the text of the objects kept with the reference fields that
 * the `make_*` functions rewrite written again (ocaml/xapi/export.ml; see ova.ts).
 */
import { REF_FIELDS, refList, tarHeader, vmObjectIds } from './ova.js';
import type { XmlRpcValue } from './xmlrpc.js';
import { encodeValue } from './xmlrpc-encode.js';

const NULL_REF = 'OpaqueRef:NULL';
const enc = new TextEncoder();

export interface Field {
  name: string;
  start: number;
  end: number;
  value: XmlRpcValue;
  /** A list's items by place, made once (null: it holds repeats or other than strings). */
  places?: Map<string, number> | null;
}

/**
 * The refs of a list field that `keep` holds, in the list's order. A shared object's list
 * (a network's VIFs, an SR's VDIs) is as long as the pool is large, and every VM's export
 * holds the object: looked up from the few kept ids instead of filtered whole each time.
 */
function keptOf(f: Field, list: XmlRpcValue[], keep: Set<string>): string[] {
  if (f.places === undefined) {
    const places = new Map<string, number>();
    list.forEach((r, i) => {
      if (typeof r === 'string') places.set(r, i);
    });
    f.places = places.size === list.length ? places : null;
  }
  const places = f.places;
  if (places === null || places.size <= keep.size) return refList(list).filter((r) => keep.has(r));
  const out: string[] = [];
  for (const id of keep) if (places.has(id)) out.push(id);
  return out.sort((a, b) => places.get(a)! - places.get(b)!);
}

export interface Obj {
  class: string;
  id: string;
  start: number;
  end: number;
  /** The reference fields, in text order. */
  fields: Field[];
  get(name: string): XmlRpcValue | undefined;
}

/**
 * Classes of pool-wide objects: one of them is in the export of every VM that uses it (an
 * SR, a network, the host), and its text is as long as the pool is large (an SR's VDIs, a
 * network's VIFs, a host's resident VMs). Their bytes are read once and kept, not read again
 * for each VM; there are few of them, and together they are a small share of the export.
 */
const POOL_WIDE = new Set(['SR', 'network', 'host', 'GPU_group', 'VGPU_type', 'PVS_site']);

/** The builders of the per-VM exports (see splitExport in ova.ts for what each holds). */
export function perVm(
  objects: Obj[],
  prolog: Buffer,
  version: Buffer,
  bytesOf: (o: Obj) => Uint8Array,
  uuids: readonly string[] | undefined,
): Map<string, () => Uint8Array> {
  const byId = new Map(objects.map((o) => [o.id, o]));
  const order = new Map(objects.map((o, i) => [o.id, i]));
  const proxies = objects.filter((o) => o.class === 'PVS_proxy');
  const want = uuids ? new Set(uuids) : null;
  const kept = new Map<string, Uint8Array>();
  const bytes = (o: Obj): Uint8Array => {
    if (!POOL_WIDE.has(o.class)) return bytesOf(o);
    let b = kept.get(o.id);
    if (b === undefined) {
      b = bytesOf(o);
      kept.set(o.id, b);
    }
    return b;
  };
  const out = new Map<string, () => Uint8Array>();
  for (const vm of objects) {
    if (vm.class !== 'VM') continue;
    const uuid = String(vm.get('uuid') ?? '');
    if (want && !want.has(uuid)) continue;
    out.set(uuid, () => {
      const keep = vmObjectIds(vm, byId, proxies, (o, f) => o.get(f));
      const parts: Uint8Array[] = [
        prolog,
        enc.encode('<value><struct><member><name>version</name>'),
        version,
        enc.encode('</member><member><name>objects</name><value><array><data>'),
      ];
      for (const id of [...keep].sort((a, b) => order.get(a)! - order.get(b)!)) {
        const o = byId.get(id)!;
        const rules = REF_FIELDS[o.class];
        const ob = bytes(o);
        let at = 0;
        for (const f of o.fields) {
          let next: XmlRpcValue | null = null;
          if (rules?.one.includes(f.name)) {
            const v = f.value;
            if (typeof v === 'string' && v !== NULL_REF && !keep.has(v)) next = NULL_REF;
          } else if (rules?.many.includes(f.name) && Array.isArray(f.value)) {
            const list = keptOf(f, f.value, keep);
            if (list.length !== f.value.length) next = list;
          }
          if (next === null) continue;
          parts.push(ob.subarray(at, f.start), enc.encode(encodeValue(next)));
          at = f.end;
        }
        parts.push(ob.subarray(at));
      }
      parts.push(enc.encode('</data></array></value></member></struct></value>'));
      return tarOf('ova.xml', parts);
    });
  }
  return out;
}

/** A one-member tar of the parts joined, made in one buffer (as `tarOne` of their join). */
function tarOf(name: string, parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(512 + Math.ceil(size / 512) * 512 + 1024);
  out.set(tarHeader(name, size), 0);
  let at = 512;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
