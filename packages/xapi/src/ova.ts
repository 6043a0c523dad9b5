/**
 * The metadata export format of xapi (`GET /export_metadata`, ocaml/xapi/export.ml): a tar
 * whose member `ova.xml` is one XML-RPC value `{version, objects}`; each object is
 * `{class, id, snapshot}`, where `id` is an export-local `Ref:N` and the reference fields the
 * `make_*` functions rewrite point at other objects' ids (or `OpaqueRef:NULL`).
 *
 * `splitExport` turns one `all=true` export into the per-VM exports xapi would have sent for
 * each VM, by following references from the VM as `update_table` does and filtering each
 * object's references to what that VM's export holds, as the `make_*` functions do.
 */
import { XapiError } from './errors.js';
import { isStruct, type XmlRpcValue } from './xmlrpc.js';
import { decodeValue } from './xmlrpc-decode.js';
import { encodeValue } from './xmlrpc-encode.js';

type Struct = { [k: string]: XmlRpcValue };

export interface OvaObject {
  class: string;
  id: string;
  snapshot: Struct;
}

export interface Ova {
  version: Struct;
  objects: OvaObject[];
}

const NULL_REF = 'OpaqueRef:NULL';
const enc = new TextEncoder();
const dec = new TextDecoder();

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/**
 * A ustar archive of one member (what xapi's handler sends: ova.xml then the end blocks).
 * The simulator builds its exports with it too.
 */
export function tarOne(name: string, data: Uint8Array, mtime = 0): Uint8Array {
  const out = new Uint8Array(512 + Math.ceil(data.length / 512) * 512 + 1024);
  out.set(tarHeader(name, data.length, mtime), 0);
  out.set(data, 512);
  return out;
}

/** The ustar header of a one-member tar (`tarOne`) holding `size` bytes. */
export function tarHeader(name: string, size: number, mtime = 0): Uint8Array {
  const h = new Uint8Array(512);
  const put = (s: string, off: number) => h.set(enc.encode(s), off);
  put(name, 0);
  put(octal(0o644, 8), 100);
  put(octal(0, 8), 108);
  put(octal(0, 8), 116);
  put(octal(size, 12), 124);
  put(octal(mtime, 12), 136);
  put('        ', 148);
  put('0', 156);
  put('ustar\u000000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/**
 * The first member of a ustar archive (the reader of what `tarOne` writes; the simulator's
 * import reads with it too): its name and bytes, or null when there is none (shorter than a
 * header, or the end blocks). A size that is not octal or runs past the end is XAPI_PROTOCOL.
 */
export function firstTarMember(tar: Uint8Array): { name: string; data: Uint8Array } | null {
  if (tar.length < 512) return null;
  const h = tar.subarray(0, 512);
  if (h.every((b) => b === 0)) return null;
  const field = (from: number, to: number) =>
    dec.decode(h.subarray(from, to)).replace(/\0.*$/s, '');
  const size = Number.parseInt(field(124, 136).trim() || 'x', 8);
  if (!Number.isFinite(size) || size < 0 || 512 + size > tar.length)
    throw new XapiError('XAPI_PROTOCOL', ['tar'], 'malformed tar header');
  return { name: field(0, 100), data: tar.subarray(512, 512 + size) };
}

/** The `ova.xml` of a metadata export tar (its first member, as xapi's import requires). */
export function ovaXmlOf(tar: Uint8Array): string {
  return dec.decode(ovaXmlBytes(tar));
}

/** The bytes of `ova.xml` in a metadata export tar (a view, not a copy). */
function ovaXmlBytes(tar: Uint8Array): Uint8Array {
  if (tar.length < 512)
    throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the metadata export is not a tar');
  let first: { name: string; data: Uint8Array } | null = null;
  try {
    first = firstTarMember(tar);
  } catch {}
  if (first?.name !== 'ova.xml')
    throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the metadata export has no ova.xml first');
  return first.data;
}

/**
 * A `<double>` read as a JS number would be written back as an `<int>` when integral (1.0
 * is 1): doubles are carried as strings behind this private-use mark, and written back as
 * the doubles they were, text unchanged.
 */
const DOUBLE = '\uE000double:';
const DOUBLE_IN = /<double>([^<]*)<\/double>/g;
const DOUBLE_OUT = /<value>\uE000double:([^<]*)<\/value>/g;

/** Parses a metadata export tar; doubles are kept as marked strings (see writeOva). */
export function readOva(tar: Uint8Array, maxLength = 1024 * 1024 * 1024): Ova {
  const xml = ovaXmlOf(tar);
  if (xml.includes('\uE000'))
    throw new XapiError('XAPI_PROTOCOL', ['ova'], 'ova.xml holds a private-use character');
  const v = decodeValue(xml.replace(DOUBLE_IN, `<string>${DOUBLE}$1</string>`), { maxLength });
  if (!isStruct(v) || !isStruct(v.version) || !Array.isArray(v.objects))
    throw new XapiError('XAPI_PROTOCOL', ['ova'], 'ova.xml is not {version, objects}');
  const objects: OvaObject[] = [];
  for (const o of v.objects) {
    if (!isStruct(o) || typeof o.class !== 'string' || typeof o.id !== 'string')
      throw new XapiError('XAPI_PROTOCOL', ['ova'], 'ova.xml holds a malformed object');
    objects.push({ class: o.class, id: o.id, snapshot: isStruct(o.snapshot) ? o.snapshot : {} });
  }
  return { version: v.version, objects };
}

/** A metadata export tar of `ova`, as xapi writes it. */
export function writeOva(ova: Ova): Uint8Array {
  const value: XmlRpcValue = {
    version: ova.version,
    objects: ova.objects.map((o) => ({ class: o.class, id: o.id, snapshot: o.snapshot })),
  };
  const xml = encodeValue(value).replace(DOUBLE_OUT, '<value><double>$1</double></value>');
  return tarOne('ova.xml', enc.encode(xml));
}

/** The networks an export refers to (each by name and bridge, how xapi's import matches). */
export function ovaNetworks(ova: Ova): { name: string; bridge: string }[] {
  return ova.objects
    .filter((o) => o.class === 'network')
    .map((o) => ({
      name: String(o.snapshot.name_label ?? ''),
      bridge: String(o.snapshot.bridge ?? ''),
    }));
}

/**
 * For each class: the reference fields its `make_*` function rewrites (ocaml/xapi/export.ml),
 * single (`lookup`: another object's id, else NULL) or lists (`filter`: only ids of exported
 * objects). Fields not named here are left as they are, as xapi leaves them.
 */
export const REF_FIELDS: Record<string, { one: string[]; many: string[] }> = {
  host: { one: ['crash_dump_sr', 'suspend_image_sr'], many: ['resident_VMs'] },
  VM: {
    one: [
      'suspend_VDI',
      'resident_on',
      'affinity',
      'metrics',
      'guest_metrics',
      'snapshot_of',
      'parent',
    ],
    many: ['VIFs', 'VBDs', 'VGPUs', 'VTPMs'],
  },
  VIF: { one: ['network', 'VM'], many: [] },
  network: { one: [], many: ['VIFs'] },
  VBD: { one: ['VDI', 'VM'], many: [] },
  VDI: { one: ['SR'], many: ['VBDs'] },
  SR: { one: [], many: ['VDIs'] },
  VGPU: { one: ['GPU_group', 'type', 'VM'], many: [] },
  GPU_group: { one: [], many: ['VGPUs'] },
  PVS_proxy: { one: ['site', 'VIF'], many: [] },
  PVS_site: { one: [], many: ['proxies'] },
  VTPM: { one: ['VM'], many: [] },
};

/** The string items of a list field (the refs), or none. */
export const refList = (v: XmlRpcValue | undefined): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

/**
 * The ids of the objects of an `all=true` export that `update_table` adds for one VM alone,
 * snapshots left out (see splitExport): written once for the decoded export (splitExport) and
 * for the index of its text (ova-split-build.ts `perVm`); `field` reads an object's field.
 */
export function vmObjectIds<O extends { id: string; class: string }>(
  vm: O,
  byId: ReadonlyMap<string, O>,
  proxies: readonly O[],
  field: (o: O, name: string) => XmlRpcValue | undefined,
): Set<string> {
  const keep = new Set<string>();
  const add = (id: XmlRpcValue | undefined): O | undefined => {
    if (typeof id !== 'string') return undefined;
    const o = byId.get(id);
    if (o) keep.add(id);
    return o;
  };
  const addVdi = (id: XmlRpcValue | undefined) => {
    const vdi = add(id);
    if (vdi) add(field(vdi, 'SR'));
  };
  add(vm.id);
  const vifs = refList(field(vm, 'VIFs'));
  for (const id of vifs) {
    const vif = add(id);
    if (vif) add(field(vif, 'network'));
  }
  for (const id of refList(field(vm, 'VBDs'))) {
    const vbd = add(id);
    if (vbd && field(vbd, 'empty') !== true) addVdi(field(vbd, 'VDI'));
  }
  for (const id of refList(field(vm, 'VGPUs'))) {
    const vgpu = add(id);
    if (vgpu) {
      add(field(vgpu, 'type'));
      add(field(vgpu, 'GPU_group'));
    }
  }
  for (const p of proxies) {
    const vif = field(p, 'VIF');
    if (typeof vif === 'string' && vifs.includes(vif)) {
      add(p.id);
      add(field(p, 'site'));
    }
  }
  for (const id of refList(field(vm, 'VTPMs'))) add(id);
  if (field(vm, 'power_state') === 'Suspended') addVdi(field(vm, 'suspend_VDI'));
  add(field(vm, 'metrics'));
  add(field(vm, 'guest_metrics'));
  add(field(vm, 'resident_on'));
  add(field(vm, 'affinity'));
  return keep;
}

/**
 * Splits an `all=true` export into per-VM exports, keyed by VM uuid, for the VMs named in
 * `uuids` (every VM object of the export when omitted). Each holds what `update_table` adds
 * for that VM alone with snapshots left out (the export must have been asked with
 * `export_snapshots=false`): the VM, its VIFs and their networks, its VBDs with their VDIs
 * (unless empty) and those VDIs' SRs, its VGPUs with their types and groups, the PVS proxies
 * of its VIFs with their sites, its VTPMs, its suspend VDI when suspended, its metrics, guest
 * metrics and the hosts it is resident on or has affinity to. References to anything else are
 * dropped (NULL, or left out of lists), as the `make_*` functions drop them.
 */
export function splitExport(all: Ova, uuids?: readonly string[]): Map<string, Ova> {
  const byId = new Map(all.objects.map((o) => [o.id, o]));
  const order = new Map(all.objects.map((o, i) => [o.id, i]));
  const proxies = all.objects.filter((o) => o.class === 'PVS_proxy');
  const want = uuids ? new Set(uuids) : null;
  const out = new Map<string, Ova>();
  for (const vm of all.objects) {
    if (vm.class !== 'VM') continue;
    const uuid = String(vm.snapshot.uuid ?? '');
    if (want && !want.has(uuid)) continue;
    const keep = vmObjectIds(vm, byId, proxies, (o, f) => o.snapshot[f]);
    // In the export's own order (make_all's class order), without a pass over all objects.
    const objects = [...keep]
      .sort((x, y) => order.get(x)! - order.get(y)!)
      .map((id) => byId.get(id)!)
      .map((o) => {
        const fields = REF_FIELDS[o.class];
        if (!fields) return o;
        const snapshot: Struct = { ...o.snapshot };
        for (const f of fields.one) {
          const v = snapshot[f];
          if (typeof v === 'string' && v !== NULL_REF && !keep.has(v)) snapshot[f] = NULL_REF;
        }
        for (const f of fields.many)
          if (Array.isArray(snapshot[f]))
            snapshot[f] = refList(snapshot[f]).filter((r) => keep.has(r));
        return { class: o.class, id: o.id, snapshot };
      });
    out.set(uuid, { version: all.version, objects });
  }
  return out;
}
