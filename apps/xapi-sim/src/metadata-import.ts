// Metadata import as ocaml/xapi/import.ml does it (PUT /import_metadata). Function names in
// comments are those of import.ml; the export is metadata-export.ts.
import { randomUUID } from 'node:crypto';
import { decodeValue, firstTarMember } from '@xsmeta/xapi';
import { Failure } from './errors.js';
import { isDefaultTemplate } from './metadata-export.js';
import { NULL, newRef, type Rec } from './model.js';
import type { Pool } from './pool.js';
import { networkRecord, vifRecord, XAPI_MAJOR, XAPI_MINOR } from './records.js';

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
