// Metadata export as ocaml/xapi/export.ml does it (GET /export_metadata). Function names in
// comments are those of export.ml; the import is metadata-import.ts.
import { tarHeader, writeValue, XmlBytes, type XmlRpcValue } from '@xsmeta/xapi';
import { Failure } from './errors.js';
import { NULL, type Rec } from './model.js';
import type { Pool } from './pool.js';
import { XAPI_MAJOR, XAPI_MINOR } from './records.js';

const EPOCH = '19700101T00:00:00Z';

/** export.ml `bool_from_request`: absent -> default; else OCaml's bool_of_string. */
function boolParam(q: URLSearchParams, k: string, dflt: boolean): boolean {
  const v = q.get(k);
  if (v === null) return dflt;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new Failure('INTERNAL_ERROR', ['Invalid_argument("bool_of_string")']);
}

/** export.ml `is_default_template` (in `metadata_handler`) and import.ml `VM.precheck`. */
export function isDefaultTemplate(vm: Rec): boolean {
  return (
    vm.is_default_template === true ||
    (vm.is_a_template === true &&
      (vm.other_config as Record<string, string> | undefined)?.default_template === 'true')
  );
}

/**
 * export.ml `lock_vm`: Xapi_vm_lifecycle.assert_operation_valid for `metadata_export` (strict),
 * then the task is added to the VM's current_operations. A metadata export may run beside
 * `migrate_send` only (xapi_vm_lifecycle.ml `is_allowed_concurrently`); anything else is
 * OTHER_OPERATION_IN_PROGRESS [VM; ref; op; task] (`report_concurrent_operations_error`).
 * xapi retries that for up to 120 s (Helpers.retry, `fail_quickly`); a VM the `busy` knob
 * holds stays busy longer than that, so the simulator answers at once what xapi answers then.
 */
function lockVm(pool: Pool, vmRef: string, task: string): void {
  const vm = pool.rec('VM', vmRef);
  const ops = Object.entries((vm.current_operations as Record<string, string>) ?? {});
  const busy = pool.faults.busyOp(String(vm.uuid), vmRef);
  if (busy) ops.push([`OpaqueRef:${vm.uuid}-busy`, busy]);
  if (ops.length > 0 && !(ops.length === 1 && ops[0]![1] === 'migrate_send')) {
    const [ref, op] =
      ops.length === 1
        ? [ops[0]![0], ops[0]![1]]
        : [`{${ops.map((o) => o[0]).join(',')}}`, `{${ops.map((o) => o[1]).join(',')}}`];
    throw new Failure('OTHER_OPERATION_IN_PROGRESS', ['VM', vmRef, op, ref]);
  }
  pool.db.mod('VM', vmRef, {
    current_operations: { ...(vm.current_operations as object), [task]: 'metadata_export' },
  });
}

function unlockVm(pool: Pool, vmRef: string, task: string): void {
  const vm = pool.db.get('VM', vmRef);
  if (!vm) return;
  const ops = { ...(vm.current_operations as Record<string, string>) };
  delete ops[task];
  pool.db.mod('VM', vmRef, { current_operations: ops });
}

/**
 * GET /export_metadata (export.ml `metadata_handler`): `uuid=` or `ref=`, or `all=true` for
 * every VM that is no default template (with the control domain unless `include_dom0=false`);
 * `export_snapshots` defaults to true. Every VM is locked for the export.
 */
export function exportMetadataRequest(pool: Pool, q: URLSearchParams, task: string): Uint8Array {
  const all = boolParam(q, 'all', false);
  const exportSnapshots = boolParam(q, 'export_snapshots', true);
  const includeDom0 = boolParam(q, 'include_dom0', true);
  let vms: string[];
  if (all) {
    vms = [...pool.db.table('VM')]
      .filter(([, v]) => !isDefaultTemplate(v) && (includeDom0 || !v.is_control_domain))
      .map(([ref]) => ref);
  } else {
    const ref = q.get('ref');
    const uuid = q.get('uuid');
    if (ref !== null) vms = [ref];
    else if (uuid !== null) {
      const hit = pool.db.byUuid('VM', uuid);
      if (!hit) throw new Failure('UUID_INVALID', ['VM', uuid]);
      vms = [hit[0]];
    } else throw new Failure('INTERNAL_ERROR', ['Not_found']);
  }
  const locked: string[] = [];
  try {
    for (const vm of vms) {
      lockVm(pool, vm, task);
      locked.push(vm);
    }
    return exportMetadata(pool, vms, exportSnapshots);
  } finally {
    for (const vm of locked) unlockVm(pool, vm, task);
  }
}

/** export.ml `vm_metadata` + `export_metadata`: a tar whose one member is ova.xml. */
export function exportMetadata(pool: Pool, vms: string[], withSnapshots: boolean): Uint8Array {
  const db = pool.db;
  // `update_table`: internal ref -> export id. As in xapi, `add` does not skip a null ref, so
  // OpaqueRef:NULL gets an id too when a VM's metrics or host links are null.
  const table = new Map<string, string>();
  const add = (r: unknown) => {
    if (typeof r === 'string' && !table.has(r)) table.set(r, `Ref:${pool.exportIds++}`);
  };
  const addVdi = (v: string) => {
    add(v);
    add(pool.rec('VDI', v).SR);
  };
  const update = (vmRef: string, includeSnapshots: boolean): void => {
    const vm = db.get('VM', vmRef);
    if (!vm || table.has(vmRef)) return;
    add(vmRef);
    for (const vif of vm.VIFs as string[]) {
      const r = db.get('VIF', vif);
      if (!r) continue;
      add(vif);
      add(r.network);
    }
    for (const vbd of vm.VBDs as string[]) {
      const r = db.get('VBD', vbd);
      if (!r) continue;
      add(vbd);
      if (!r.empty) addVdi(r.VDI as string);
    }
    if (includeSnapshots) for (const s of vm.snapshots as string[]) update(s, false);
    if (vm.power_state === 'Suspended' && db.get('VDI', vm.suspend_VDI as string))
      addVdi(vm.suspend_VDI as string);
    add(vm.metrics);
    add(vm.guest_metrics);
    add(vm.resident_on);
    add(vm.affinity);
    if (includeSnapshots && db.get('VM', vm.parent as string)) update(vm.parent as string, false);
  };
  for (const vm of vms) update(vm, withSnapshots);
  const lookup = (r: unknown) => (typeof r === 'string' ? (table.get(r) ?? NULL) : NULL);
  const filter = (rs: unknown) =>
    ((rs as string[] | undefined) ?? []).map(lookup).filter((x) => x !== NULL);
  const noOps = { current_operations: {}, allowed_operations: [] };
  // The `make_*` functions: only the fields each names are rewritten or emptied.
  const make: [string, (r: Rec) => Rec][] = [
    [
      'host',
      (h) => ({
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
    ],
    [
      'VM',
      (v) => ({
        ...v,
        suspend_VDI: lookup(v.suspend_VDI),
        is_a_snapshot: withSnapshots ? v.is_a_snapshot! : false,
        snapshot_of: withSnapshots ? lookup(v.snapshot_of) : NULL,
        // As export.ml: kept as they are (internal refs), not looked up.
        snapshots: withSnapshots ? v.snapshots! : [],
        snapshot_time: withSnapshots ? v.snapshot_time! : EPOCH,
        transportable_snapshot_id: withSnapshots ? v.transportable_snapshot_id! : '',
        parent: withSnapshots ? lookup(v.parent) : NULL,
        ...noOps,
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
    ],
    ['VM_metrics', (m) => m],
    ['VM_guest_metrics', (m) => m],
    ['VBD', (b) => ({ ...b, VDI: lookup(b.VDI), VM: lookup(b.VM), metrics: NULL, ...noOps })],
    [
      'VIF',
      (f) => ({ ...f, network: lookup(f.network), VM: lookup(f.VM), metrics: NULL, ...noOps }),
    ],
    ['network', (n) => ({ ...n, VIFs: filter(n.VIFs), PIFs: [], ...noOps })],
    ['VDI', (d) => ({ ...d, VBDs: filter(d.VBDs), crash_dumps: [], SR: lookup(d.SR), ...noOps })],
    ['SR', (s) => ({ ...s, VDIs: filter(s.VDIs), PBDs: [], ...noOps })],
  ];
  // The records go in as they are, not cloned: the `make_*` functions above copy what they
  // rewrite and change nothing, and the result is encoded below before anything can.
  const objects: XmlRpcValue[] = [];
  for (const [cls, fn] of make)
    for (const [ref, rec] of db.table(cls))
      if (table.has(ref))
        objects.push({
          class: cls,
          id: table.get(ref)!,
          snapshot: fn(rec) as XmlRpcValue,
        });
  const [, host] = [...db.table('host').entries()][0]!;
  const ova = {
    version: {
      hostname: host.hostname as string,
      date: new Date().toISOString().slice(0, 10),
      product_version: '8.3.0',
      product_brand: 'XCP-ng',
      build_number: 'release/yangtze',
      xapi_major: XAPI_MAJOR,
      xapi_minor: XAPI_MINOR,
      export_vsn: 2,
    },
    objects,
  };
  // The tar (`tarOne` of ova.xml) made in one buffer: header room, the XML written as bytes
  // straight after it, then the padding and the end blocks; the header last, once the size
  // is known.
  const tar = new XmlBytes(512);
  tar.ascii('<?xml version="1.0" encoding="UTF-8"?>');
  writeValue(ova, tar);
  const size = tar.length - 512;
  tar.zeros(((512 - (size % 512)) % 512) + 1024);
  const out = tar.bytes();
  out.set(tarHeader('ova.xml', size, Math.floor(Date.now() / 1000)), 0);
  return out;
}
