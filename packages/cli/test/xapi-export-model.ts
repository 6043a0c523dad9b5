/**
 * A model of what xapi's metadata export holds, for export-all.test.ts: the pool's records read
 * back (`readDb`), made more like a real pool's (`enrich`), exported as ocaml/xapi/export.ml
 * does (`xapiExport`: update_table, the make_* functions, make_all's class order, the
 * export-local `Ref:N` ids of a counter shared by every export), and compared by what the
 * references point at (`canonical`). Kept apart from apps/xapi-sim's export on purpose: the
 * test checks the split against this model, and the simulator's own exports separately.
 */
import type { readOva, XapiClient, XmlRpcValue } from '@xsmeta/xapi';

export type Rec = Record<string, XmlRpcValue>;
type Db = Map<string, Map<string, Rec>>;

const NULL = 'OpaqueRef:NULL';
const EPOCH = '19700101T00:00:00Z';
const CLASSES = [
  'host',
  'VM',
  'VM_metrics',
  'VM_guest_metrics',
  'VBD',
  'VIF',
  'network',
  'VDI',
  'SR',
  'VGPU_type',
  'VGPU',
  'GPU_group',
  'PVS_proxy',
  'PVS_site',
  'VTPM',
] as const;

export async function readDb(xapi: XapiClient): Promise<Db> {
  const db: Db = new Map();
  for (const cls of CLASSES) {
    try {
      db.set(cls, (await xapi.getAllRecords<Rec>(cls)) as Map<string, Rec>);
    } catch {
      db.set(cls, new Map());
    }
  }
  return db;
}

/** ocaml/xapi/export.ml's make_id: one counter for the whole process. */
let counter = 0;

/** The ova.xml xapi writes for `vms` (metadata export, preserve_power_state, no vhd parents). */
export function xapiExport(db: Db, vms: string[], withSnapshots: boolean) {
  const table = new Map<string, string>();
  const get = (cls: string, ref: XmlRpcValue | undefined) =>
    typeof ref === 'string' ? db.get(cls)?.get(ref) : undefined;
  const add = (r: XmlRpcValue | undefined) => {
    const k = String(r);
    if (!table.has(k)) table.set(k, `Ref:${counter++}`);
  };
  const addVdi = (v: XmlRpcValue | undefined) => {
    add(v);
    add(get('VDI', v)?.SR ?? NULL);
  };
  const refs = (v: XmlRpcValue | undefined) => (Array.isArray(v) ? (v as string[]) : []);
  const update = (vm: string, includeSnapshots: boolean) => {
    const r = get('VM', vm);
    if (!r || table.has(vm)) return;
    add(vm);
    for (const vif of refs(r.VIFs))
      if (get('VIF', vif)) {
        add(vif);
        add(get('VIF', vif)!.network);
      }
    for (const vbd of refs(r.VBDs))
      if (get('VBD', vbd)) {
        add(vbd);
        if (get('VBD', vbd)!.empty !== true) addVdi(get('VBD', vbd)!.VDI);
      }
    for (const vgpu of refs(r.VGPUs))
      if (get('VGPU', vgpu)) {
        add(vgpu);
        add(get('VGPU', vgpu)!.type);
        add(get('VGPU', vgpu)!.GPU_group);
      }
    for (const [ref, p] of db.get('PVS_proxy') ?? [])
      if (refs(r.VIFs).includes(String(p.VIF)) && get('PVS_proxy', ref)) {
        add(ref);
        add(p.site);
      }
    for (const t of refs(r.VTPMs)) if (get('VTPM', t)) add(t);
    if (includeSnapshots) for (const s of refs(r.snapshots)) update(s, false);
    if (r.power_state === 'Suspended' && get('VDI', r.suspend_VDI)) addVdi(r.suspend_VDI);
    add(r.metrics);
    add(r.guest_metrics);
    add(r.resident_on);
    add(r.affinity);
    if (includeSnapshots && get('VM', r.parent)) update(String(r.parent), false);
  };
  for (const vm of vms) update(vm, withSnapshots);
  const lookup = (r: XmlRpcValue | undefined) => table.get(String(r)) ?? NULL;
  const filter = (rs: XmlRpcValue | undefined) =>
    refs(rs)
      .map(lookup)
      .filter((x) => x !== NULL);
  const make: Record<string, (r: Rec) => Rec> = {
    host: (h) => ({
      ...h,
      PIFs: [],
      PBDs: [],
      PGPUs: [],
      PCIs: [],
      host_CPUs: [],
      license_params: {},
      blobs: {},
      external_auth_type: '',
      external_auth_service_name: '',
      external_auth_configuration: {},
      metrics: NULL,
      patches: [],
      crashdumps: [],
      logging: {},
      supported_bootloaders: [],
      cpu_configuration: {},
      other_config: {},
      capabilities: [],
      software_version: {},
      sched_policy: '',
      ha_statefiles: [],
      ha_network_peers: [],
      tags: [],
      crash_dump_sr: lookup(h.crash_dump_sr),
      suspend_image_sr: lookup(h.suspend_image_sr),
      resident_VMs: filter(h.resident_VMs),
    }),
    VM: (v) => ({
      ...v,
      suspend_VDI: lookup(v.suspend_VDI),
      is_a_snapshot: withSnapshots ? v.is_a_snapshot! : false,
      snapshot_of: withSnapshots ? lookup(v.snapshot_of) : NULL,
      snapshots: withSnapshots ? v.snapshots! : [],
      snapshot_time: withSnapshots ? v.snapshot_time! : EPOCH,
      transportable_snapshot_id: withSnapshots ? v.transportable_snapshot_id! : '',
      parent: withSnapshots ? lookup(v.parent) : NULL,
      current_operations: {},
      allowed_operations: [],
      VIFs: filter(v.VIFs),
      VBDs: filter(v.VBDs),
      VGPUs: filter(v.VGPUs),
      crash_dumps: [],
      VTPMs: filter(v.VTPMs),
      resident_on: lookup(v.resident_on),
      affinity: lookup(v.affinity),
      consoles: [],
      metrics: lookup(v.metrics),
      guest_metrics: lookup(v.guest_metrics),
      protection_policy: NULL,
      blobs: {},
    }),
    VIF: (v) => ({
      ...v,
      network: lookup(v.network),
      VM: lookup(v.VM),
      metrics: NULL,
      current_operations: {},
      allowed_operations: [],
    }),
    network: (n) => ({
      ...n,
      VIFs: filter(n.VIFs),
      PIFs: [],
      current_operations: {},
      allowed_operations: [],
    }),
    VBD: (b) => ({
      ...b,
      VDI: lookup(b.VDI),
      VM: lookup(b.VM),
      metrics: NULL,
      current_operations: {},
      allowed_operations: [],
    }),
    VDI: (d) => ({
      ...d,
      VBDs: filter(d.VBDs),
      crash_dumps: [],
      SR: lookup(d.SR),
      current_operations: {},
      allowed_operations: [],
    }),
    SR: (s) => ({
      ...s,
      VDIs: filter(s.VDIs),
      PBDs: [],
      current_operations: {},
      allowed_operations: [],
    }),
  };
  const objects = [];
  for (const cls of CLASSES)
    for (const [ref, rec] of db.get(cls) ?? [])
      if (table.has(ref))
        objects.push({ class: cls, id: table.get(ref)!, snapshot: (make[cls] ?? ((x) => x))(rec) });
  return { version: { export_vsn: '2', hostname: 'master' } as Rec, objects };
}

/**
 * The i-th VM (from 1) of a seeded pool placed as on a real pool: every third one running on
 * the host (and listed in its resident_VMs), every fourth from the first with an affinity.
 */
export function placeOnHost(i: number, ref: string, vm: Rec, host: Rec, hostRef: string): void {
  if (i % 3 === 0) {
    vm.power_state = 'Running';
    vm.resident_on = hostRef;
    (host.resident_VMs as string[]).push(ref);
  }
  if (i % 4 === 1) vm.affinity = hostRef;
}

/**
 * What the seeded pool lacks and a real one has: running VMs resident on the host, VMs with
 * an affinity, metrics and guest metrics objects, a suspended VM with its suspend VDI, and a
 * host whose crash-dump SR is one the VMs use.
 */
export function enrich(db: Db): void {
  const [hostRef, host] = [...db.get('host')!.entries()][0]!;
  const srRef = [...db.get('SR')!.keys()][0]!;
  host.crash_dump_sr = srRef;
  host.resident_VMs = [];
  const metrics = db.get('VM_metrics')!;
  const guest = db.get('VM_guest_metrics')!;
  let i = 0;
  for (const [ref, vm] of db.get('VM')!) {
    if (vm.is_control_domain === true || vm.is_a_snapshot === true) continue;
    i++;
    placeOnHost(i, ref, vm, host, hostRef);
    vm.metrics = `OpaqueRef:metrics-${i}`;
    metrics.set(vm.metrics, {
      uuid: `metrics-${i}`,
      memory_actual: '1073741824',
      VCPUs_number: '2',
    });
    if (i % 2 === 0) {
      vm.guest_metrics = `OpaqueRef:guest-${i}`;
      guest.set(vm.guest_metrics, { uuid: `guest-${i}`, os_version: { name: 'Debian' } });
    }
    if (i === 5) {
      vm.power_state = 'Suspended';
      const vdis = db.get('VDI')!;
      const [, model] = [...vdis.entries()][0]!;
      vm.suspend_VDI = 'OpaqueRef:suspend-5';
      vdis.set(vm.suspend_VDI, { ...model, uuid: 'suspend-vdi-5', VBDs: [], SR: srRef });
      const sr = db.get('SR')!.get(srRef)!;
      sr.VDIs = [...(sr.VDIs as string[]), vm.suspend_VDI];
    }
  }
}

/** An export as comparable data: objects by class and uuid, references by what they point at. */
export function canonical(ova: ReturnType<typeof readOva>): Record<string, unknown> {
  const who = new Map(ova.objects.map((o) => [o.id, `${o.class}:${String(o.snapshot.uuid)}`]));
  const out: Record<string, unknown> = {};
  for (const o of ova.objects) {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o.snapshot)) {
      if (typeof v === 'string' && v.startsWith('Ref:')) fields[k] = who.get(v) ?? NULL;
      else if (Array.isArray(v) && v.every((x) => typeof x === 'string' && x.startsWith('Ref:')))
        fields[k] = (v as string[]).map((x) => who.get(x) ?? NULL).sort();
      else fields[k] = v;
    }
    out[`${o.class}:${String(o.snapshot.uuid)}`] = fields;
  }
  return out;
}
