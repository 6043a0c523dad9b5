// Metadata export and import as ocaml/xapi/export.ml and ocaml/xapi/import.ml do them, and the
// pool database restore check of ocaml/xapi/pool_db_backup.ml. Function names in comments are
// those of the xen-api file named.
import { randomUUID } from 'node:crypto';
import { decodeValue, encodeValue, firstTarMember, tarOne, type XmlRpcValue } from '@xsmeta/xapi';
import { parseDbDump } from './dbxml.js';
import { Failure } from './errors.js';
import { NULL, newRef, type Rec } from './model.js';
import type { Pool } from './pool.js';
import { networkRecord, vifRecord, XAPI_MAJOR, XAPI_MINOR } from './seed.js';

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
function isDefaultTemplate(vm: Rec): boolean {
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
  const objects: XmlRpcValue[] = [];
  for (const [cls, fn] of make)
    for (const [ref, rec] of db.table(cls))
      if (table.has(ref))
        objects.push({
          class: cls,
          id: table.get(ref)!,
          snapshot: fn(structuredClone(rec)) as XmlRpcValue,
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
  return tarOne(
    'ova.xml',
    new TextEncoder().encode(`<?xml version="1.0" encoding="UTF-8"?>${encodeValue(ova)}`),
    Math.floor(Date.now() / 1000),
  );
}

interface Obj {
  class: string;
  id: string;
  snapshot: Rec;
}

export interface ImportOptions {
  restore: boolean;
  force: boolean;
  dryRun: boolean;
}

/** Reads ova.xml, which must be the first member of the tar (import.ml `assert_filename_is`). */
function readOva(body: Uint8Array): {
  version?: { xapi_major?: number; xapi_minor?: number };
  objects?: Obj[];
} {
  let first: { name: string; data: Uint8Array } | null;
  try {
    first = firstTarMember(body);
  } catch (e) {
    throw new Failure('IMPORT_ERROR', [`cannot read the archive: ${(e as Error).message}`]);
  }
  if (first === null) throw new Failure('IMPORT_ERROR_PREMATURE_EOF', []);
  if (first.name !== 'ova.xml')
    throw new Failure('IMPORT_ERROR_UNEXPECTED_FILE', ['ova.xml', first.name]);
  try {
    return decodeValue(new TextDecoder().decode(first.data), {
      maxLength: 64 * 1024 * 1024,
    }) as ReturnType<typeof readOva>;
  } catch (e) {
    throw new Failure('IMPORT_ERROR', [`cannot read ova.xml: ${(e as Error).message}`]);
  }
}

/** import.ml `assert_can_restore_backup`: DUPLICATE_MAC_SEED [mac]. */
function assertCanRestoreBackup(pool: Pool, objects: Obj[]): void {
  const vms = objects.filter((o) => o.class === 'VM').map((o) => o.snapshot);
  const originOf = (s: Rec): string | undefined => {
    const of = String(s.snapshot_of ?? '');
    if (of.startsWith('Ref:'))
      return objects.find((o) => o.class === 'VM' && o.id === of)?.snapshot.uuid as string;
    if (of.startsWith('OpaqueRef:')) return pool.db.get('VM', of)?.uuid as string | undefined;
    return undefined;
  };
  const compatible = (a: Rec, b: Rec) => {
    if (!a.is_a_snapshot && !b.is_a_snapshot) return a.uuid === b.uuid;
    if (a.is_a_snapshot && b.is_a_snapshot) {
      const x = originOf(a);
      return x !== undefined && x === originOf(b);
    }
    const [snap, vm] = a.is_a_snapshot ? [a, b] : [b, a];
    return originOf(snap) === vm.uuid;
  };
  const seed = (v: Rec) => (v.other_config as Record<string, string> | undefined)?.mac_seed;
  for (const v of vms) {
    const mac = seed(v);
    if (!mac) continue;
    for (const other of pool.db.table('VM').values())
      if (seed(other) === mac && !compatible(v, other))
        throw new Failure('DUPLICATE_MAC_SEED', [mac]);
  }
}

/**
 * PUT /import_metadata (import.ml `metadata_handler` and `handle_all`): objects are handled
 * class by class (SR, VDI, VM, network, VBD, VIF), each by its precheck then its handler.
 * Resolves with the refs of the VMs created (import.ml `created_vms`).
 */
export async function importMetadata(
  pool: Pool,
  body: Uint8Array,
  o: ImportOptions,
): Promise<string[]> {
  const db = pool.db;
  const ova = readOva(body);
  // importexport.ml `assert_compatible`.
  const major = Number(ova.version?.xapi_major ?? 0);
  const minor = Number(ova.version?.xapi_minor ?? 0);
  if (major > XAPI_MAJOR || (major === XAPI_MAJOR && minor > XAPI_MINOR))
    throw new Failure('IMPORT_INCOMPATIBLE_VERSION', []);
  const objects = ova.objects ?? [];
  if (o.restore) assertCanRestoreBackup(pool, objects);
  const table = new Map<string, string>();
  const created: string[] = [];
  const cleanup: (() => void)[] = [];
  const find = (id: unknown): Rec => {
    const x = objects.find((y) => y.id === id);
    if (!x) throw new Failure('IMPORT_ERROR_FAILED_TO_FIND_OBJECT', [String(id)]);
    return x.snapshot;
  };
  const lookup = (id: unknown): string => {
    const r = table.get(String(id));
    if (r === undefined) throw new Failure('IMPORT_ERROR_FAILED_TO_FIND_OBJECT', [String(id)]);
    return r;
  };
  const of = (cls: string) => objects.filter((x) => x.class === cls);
  try {
    // Host: mapped by uuid when it exists.
    for (const x of of('host')) {
      const h = db.byUuid('host', String(x.snapshot.uuid));
      if (h) table.set(x.id, h[0]);
    }
    // SR (`SR.precheck`): by uuid, else left out (its VDIs are looked for all the same).
    for (const x of of('SR')) {
      const sr = db.byUuid('SR', String(x.snapshot.uuid));
      if (sr) table.set(x.id, sr[0]);
    }
    // VDI (`VDI.precheck`): an ISO by location in any ISO SR, else ejected; a disk by
    // (SR, location); missing: skipped with force, else VDI_LOCATION_MISSING [sr; location]
    // when the SR is known, VDI_CONTENT_ID_MISSING [] when it is not.
    for (const x of of('VDI')) {
      const v = x.snapshot;
      const origSr = find(v.SR);
      const location = String(v.location ?? '');
      if (origSr.content_type === 'iso') {
        const iso = [...db.table('VDI')].find(([, d]) => {
          const sr = db.get('SR', d.SR as string);
          return d.location === location && sr?.content_type === 'iso' && sr.type !== 'udev';
        });
        if (iso) table.set(x.id, iso[0]);
        continue;
      }
      const srRef = table.get(String(v.SR));
      const hit =
        srRef === undefined
          ? undefined
          : [...db.table('VDI')].find(([, d]) => d.SR === srRef && d.location === location);
      if (hit) {
        table.set(x.id, hit[0]);
        continue;
      }
      if (o.force) continue;
      if (srRef !== undefined) throw new Failure('VDI_LOCATION_MISSING', [srRef, location]);
      throw new Failure('VDI_CONTENT_ID_MISSING', []);
    }
    // VM (`VM.precheck`, `VM.handle`).
    for (const x of of('VM')) {
      const vm = x.snapshot;
      if (isDefaultTemplate(vm)) {
        const t = [...db.table('VM')].find(([, v]) => v.name_label === vm.name_label);
        if (t) {
          table.set(x.id, t[0]);
          created.push(t[0]);
          continue;
        }
      }
      const existing = o.restore ? db.byUuid('VM', String(vm.uuid)) : undefined;
      let replace: string | undefined;
      if (existing) {
        const [ref, ex] = existing;
        if (ex.power_state !== 'Halted') {
          if (o.force) continue; // Skip: the running VM stays as it is.
          throw new Failure('VM_BAD_POWER_STATE', [ref, 'Halted', String(ex.power_state)]);
        }
        if (Number(ex.version ?? 0) >= Number(vm.version ?? 0) && !o.force)
          throw new Failure('VM_TO_IMPORT_IS_NOT_NEWER_VERSION', [
            ref,
            String(Number(ex.version ?? 0)),
            String(Number(vm.version ?? 0)),
          ]);
        replace = ref;
      }
      if (o.dryRun) {
        table.set(x.id, newRef());
        continue;
      }
      if (replace) pool.destroyVm(replace);
      const oc = { ...(vm.other_config as Record<string, string>) };
      delete oc.grant_api_access;
      if (!o.restore) oc.mac_seed = randomUUID();
      if (!o.force && !existing) delete oc.default_template;
      const ref = newRef();
      db.add(
        'VM',
        {
          ...vm,
          uuid: o.restore ? vm.uuid! : randomUUID(),
          other_config: oc,
          is_default_template: o.force || existing ? vm.is_default_template! : false,
          power_state: vm.power_state === 'Suspended' ? 'Suspended' : 'Halted',
          VBDs: [],
          VIFs: [],
          resident_on: NULL,
          scheduled_to_be_resident_on: NULL,
          affinity: table.get(String(vm.affinity)) ?? NULL,
          snapshots: [],
          children: [],
          metrics: NULL,
          guest_metrics: NULL,
          consoles: [],
          current_operations: {},
          allowed_operations: [],
        },
        ref,
      );
      cleanup.push(() => pool.destroyVm(ref));
      table.set(x.id, ref);
      created.push(ref);
    }
    // network (`Net.precheck`): by name_label, then by bridge, else created. There is no lock
    // between the lookup and Network.create (xapi_network.ml `create`), which refuses a bridge
    // that exists (BRIDGE_NAME_EXISTS [bridge]) and picks a fresh one for an empty bridge.
    for (const x of of('network')) {
      const n = x.snapshot;
      const found = () =>
        [...db.table('network')].find(([, r]) => r.name_label === n.name_label)?.[0] ??
        (n.bridge
          ? [...db.table('network')].find(([, r]) => r.bridge === n.bridge)?.[0]
          : undefined);
      const hit = found();
      if (hit) {
        table.set(x.id, hit);
        continue;
      }
      if (o.dryRun) {
        table.set(x.id, newRef());
        continue;
      }
      // The race window xapi has here. Opened only with the importBarrier knob, so that tests
      // race deterministically; without it lookup and create happen in one step.
      const race = pool.faults.current.importBarrier;
      if (race) await pool.barrier(race.count, race.timeoutMs ?? 2000);
      const bridges = new Set([...db.table('network').values()].map((r) => r.bridge));
      let bridge = String(n.bridge ?? '');
      if (bridge === '') {
        let i = 0;
        while (bridges.has(`xapi${i}`)) i++;
        bridge = `xapi${i}`;
      } else if (bridges.has(bridge)) throw new Failure('BRIDGE_NAME_EXISTS', [bridge]);
      const ref = db.add('network', {
        ...networkRecord({ uuid: randomUUID(), name: String(n.name_label ?? ''), bridge }),
        name_description: String(n.name_description ?? ''),
        MTU: String(n.MTU ?? '1500'),
        other_config: (n.other_config as Record<string, string>) ?? {},
      });
      cleanup.push(() => db.del('network', ref));
      table.set(x.id, ref);
    }
    // VBD (`VBD.precheck`): an existing VBD of the same uuid is kept; a CD whose disk is
    // missing is ejected, a disk whose VDI is missing is left out.
    for (const x of of('VBD')) {
      const b = x.snapshot;
      const same = o.restore ? db.byUuid('VBD', String(b.uuid)) : undefined;
      if (same) {
        table.set(x.id, same[0]);
        continue;
      }
      const vm = lookup(b.VM);
      const vdi = table.get(String(b.VDI));
      if (b.currently_attached && vdi === undefined && b.type !== 'CD')
        throw new Failure('IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND', []);
      if (vdi === undefined && b.type !== 'CD') continue;
      if (o.dryRun) {
        table.set(x.id, newRef());
        continue;
      }
      const ref = pool.createVbd({
        VM: vm,
        VDI: vdi ?? NULL,
        empty: vdi === undefined,
        userdevice: String(b.userdevice ?? 'autodetect'),
        bootable: Boolean(b.bootable),
        mode: String(b.mode ?? 'RW'),
        type: String(b.type ?? 'Disk'),
        other_config: b.other_config ?? {},
      });
      if (o.restore) db.mod('VBD', ref, { uuid: b.uuid! });
      table.set(x.id, ref);
    }
    // VIF (`VIF.precheck`): an existing VIF of the same uuid is kept.
    for (const x of of('VIF')) {
      const f = x.snapshot;
      const same = o.restore ? db.byUuid('VIF', String(f.uuid)) : undefined;
      if (same) {
        table.set(x.id, same[0]);
        continue;
      }
      const vm = lookup(f.VM);
      const net = lookup(f.network);
      if (o.dryRun) continue;
      const ref = db.add(
        'VIF',
        vifRecord({
          uuid: o.restore ? String(f.uuid) : randomUUID(),
          vm,
          network: net,
          device: String(f.device),
          mac: String(f.MAC),
        }),
      );
      db.mod('VM', vm, { VIFs: [...(db.get('VM', vm)!.VIFs as string[]), ref] });
      const n = db.get('network', net)!;
      db.mod('network', net, { VIFs: [...(n.VIFs as string[]), ref] });
    }
    if (!o.dryRun) {
      // `update_snapshot_and_parent_links`.
      for (const x of of('VM')) {
        const ref = table.get(x.id);
        const v = x.snapshot;
        if (!ref || !created.includes(ref) || !db.get('VM', ref)) continue;
        const origin = table.get(String(v.snapshot_of));
        if (v.is_a_snapshot && origin && db.get('VM', origin)) {
          db.mod('VM', ref, { snapshot_of: origin });
          const parent = db.get('VM', origin)!;
          db.mod('VM', origin, { snapshots: [...(parent.snapshots as string[]), ref] });
        } else db.mod('VM', ref, { snapshot_of: NULL });
        db.mod('VM', ref, { parent: table.get(String(v.parent)) ?? NULL });
      }
    }
  } catch (e) {
    // handle_all: on failure the objects made so far are removed, unless `force`.
    if (!o.force) for (const c of cleanup.reverse()) c();
    throw e;
  }
  return [...new Set(created)];
}

/** pool_db_backup.ml `restore_from_xml`: the version check; the simulator restores dry only. */
export function restoreDb(_pool: Pool, xml: string, dryRun: boolean): void {
  let parsed: ReturnType<typeof parseDbDump>;
  try {
    parsed = parseDbDump(xml);
  } catch (e) {
    throw new Failure('INTERNAL_ERROR', [(e as Error).message]);
  }
  if (Number(parsed.manifest.schema_major_vsn) !== 5)
    throw new Failure('RESTORE_INCOMPATIBLE_VERSION', []);
  if (dryRun) return;
  // A real pool restarts on the restored database; the simulator checks only (README).
  throw new Failure('OPERATION_NOT_ALLOWED', [
    'the simulator restores pool databases with dry_run=true only',
  ]);
}
