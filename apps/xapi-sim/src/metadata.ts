// Metadata export and import as ocaml/xapi/export.ml and ocaml/xapi/import.ml do them, and the
// pool database restore check of ocaml/xapi/pool_db_backup.ml.
import { randomUUID } from 'node:crypto';
import { decodeValue, encodeValue, type XmlRpcValue } from '@xsmeta/xapi';
import { parseDbDump } from './dbxml.js';
import { Failure } from './errors.js';
import { NULL, newRef, type Rec } from './model.js';
import type { Pool } from './pool.js';
import { networkRecord, vifRecord, XAPI_MAJOR, XAPI_MINOR } from './seed.js';
import { tarOne, untar } from './tar.js';

export function exportMetadata(pool: Pool, vmRef: string): Uint8Array {
  const vm = pool.rec('VM', vmRef);
  const objs: { cls: string; ref: string }[] = [{ cls: 'VM', ref: vmRef }];
  const add = (cls: string, ref: unknown) => {
    if (
      typeof ref === 'string' &&
      ref !== NULL &&
      pool.db.get(cls, ref) &&
      !objs.some((o) => o.ref === ref)
    )
      objs.push({ cls, ref });
  };
  for (const vbd of vm.VBDs as string[]) {
    add('VBD', vbd);
    const vdiRef = pool.db.get('VBD', vbd)?.VDI;
    add('VDI', vdiRef);
    if (typeof vdiRef === 'string') add('SR', pool.db.get('VDI', vdiRef)?.SR);
  }
  for (const vif of vm.VIFs as string[]) {
    add('VIF', vif);
    add('network', pool.db.get('VIF', vif)?.network);
  }
  const ids = new Map(objs.map((o, i) => [o.ref, `Ref:${i}`]));
  const rewrite = (v: unknown): XmlRpcValue => {
    if (typeof v === 'string') return v.startsWith('OpaqueRef:') ? (ids.get(v) ?? NULL) : v;
    if (Array.isArray(v)) return v.map(rewrite);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)]));
    return v as XmlRpcValue;
  };
  const [, host] = [...pool.db.table('host').entries()][0]!;
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
    objects: objs.map((o) => ({
      class: o.cls,
      id: ids.get(o.ref)!,
      snapshot: rewrite(pool.db.get(o.cls, o.ref)),
    })),
  };
  return tarOne(
    'ova.xml',
    new TextEncoder().encode(`<?xml version="1.0" encoding="UTF-8"?>${encodeValue(ova)}`),
  );
}

export function importMetadata(
  pool: Pool,
  body: Uint8Array,
  o: { force: boolean; dryRun: boolean },
): string[] {
  let ova: {
    version?: { xapi_major?: number; xapi_minor?: number };
    objects?: { class: string; id: string; snapshot: Rec }[];
  };
  try {
    const xml = untar(body).get('ova.xml');
    if (!xml) throw new Error('no ova.xml');
    ova = decodeValue(new TextDecoder().decode(xml), {
      maxLength: 64 * 1024 * 1024,
    }) as typeof ova;
  } catch (e) {
    throw new Failure('IMPORT_ERROR', [`cannot read the export: ${(e as Error).message}`]);
  }
  const major = Number(ova.version?.xapi_major ?? 0);
  const minor = Number(ova.version?.xapi_minor ?? 0);
  if (major > XAPI_MAJOR || (major === XAPI_MAJOR && minor > XAPI_MINOR)) {
    throw new Failure('IMPORT_INCOMPATIBLE_VERSION', [
      `${major}.${minor}`,
      `${XAPI_MAJOR}.${XAPI_MINOR}`,
    ]);
  }
  const objects = ova.objects ?? [];
  const byId = new Map(objects.map((x) => [x.id, x]));
  const vmObj = objects.find((x) => x.class === 'VM' && !x.snapshot.is_a_snapshot);
  if (!vmObj) throw new Failure('IMPORT_ERROR', ['the export holds no VM']);
  const vm = vmObj.snapshot;
  const existing = pool.db.byUuid('VM', vm.uuid as string);
  if (existing) {
    const [, ex] = existing;
    if (ex.power_state !== 'Halted')
      throw new Failure('VM_BAD_POWER_STATE', [
        existing[0],
        'halted',
        String(ex.power_state).toLowerCase(),
      ]);
    if (!o.force)
      throw new Failure('VM_TO_IMPORT_IS_NOT_NEWER_VERSION', [
        existing[0],
        String(ex.version ?? '0'),
        String(vm.version ?? '0'),
      ]);
  }
  const seed = (vm.other_config as Record<string, string> | undefined)?.mac_seed;
  if (seed) {
    for (const [ref, other] of pool.db.table('VM')) {
      if (
        other.uuid !== vm.uuid &&
        (other.other_config as Record<string, string>)?.mac_seed === seed &&
        !other.is_a_snapshot
      ) {
        throw new Failure('DUPLICATE_MAC_SEED', [ref]);
      }
    }
  }
  // Disks: matched by uuid in the SR of the same uuid.
  const disks: { vbd: Rec; vdiRef: string }[] = [];
  for (const x of objects.filter((y) => y.class === 'VBD')) {
    const vdiId = x.snapshot.VDI as string;
    const vdiObj = byId.get(vdiId);
    if (!vdiObj || x.snapshot.empty) {
      disks.push({ vbd: x.snapshot, vdiRef: NULL });
      continue;
    }
    const srObj = byId.get(vdiObj.snapshot.SR as string);
    const sr = srObj ? pool.db.byUuid('SR', srObj.snapshot.uuid as string) : undefined;
    const vdi = pool.db.byUuid('VDI', vdiObj.snapshot.uuid as string);
    if (!vdi || (sr && vdi[1].SR !== sr[0])) {
      if (o.force) continue;
      if (!sr)
        throw new Failure('VDI_CONTENT_ID_MISSING', [
          String(vdiObj.snapshot.uuid),
          String(vdiObj.snapshot.location ?? ''),
        ]);
      throw new Failure('VDI_LOCATION_MISSING', [
        sr[0],
        String(vdiObj.snapshot.location ?? vdiObj.snapshot.uuid),
      ]);
    }
    disks.push({ vbd: x.snapshot, vdiRef: vdi[0] });
  }
  if (o.dryRun) return [];
  if (existing) pool.destroyVm(existing[0]);
  const vmRef = newRef();
  const fresh: Rec = {
    ...vm,
    VBDs: [],
    VIFs: [],
    resident_on: NULL,
    affinity: NULL,
    power_state: 'Halted',
    snapshots: [],
    snapshot_of: NULL,
    parent: NULL,
    children: [],
    metrics: NULL,
    guest_metrics: NULL,
    consoles: [],
    current_operations: {},
  };
  pool.db.add('VM', fresh, vmRef);
  for (const d of disks) {
    pool.createVbd({
      VM: vmRef,
      VDI: d.vdiRef,
      empty: d.vdiRef === NULL,
      userdevice: String(d.vbd.userdevice ?? '0'),
      bootable: Boolean(d.vbd.bootable),
      mode: String(d.vbd.mode ?? 'RW'),
      type: String(d.vbd.type ?? 'Disk'),
    });
  }
  for (const x of objects.filter((y) => y.class === 'VIF')) {
    const netObj = byId.get(x.snapshot.network as string);
    let netRef = [...pool.db.table('network').entries()].find(
      ([, n]) => netObj && (n.uuid === netObj.snapshot.uuid || n.bridge === netObj.snapshot.bridge),
    )?.[0];
    if (!netRef)
      netRef = pool.db.add(
        'network',
        networkRecord({
          uuid: String(netObj?.snapshot.uuid ?? randomUUID()),
          name: String(netObj?.snapshot.name_label ?? 'imported network'),
          bridge: String(netObj?.snapshot.bridge ?? 'xapi0'),
        }),
      );
    const vif = pool.db.add(
      'VIF',
      vifRecord({
        uuid: x.snapshot.uuid as string,
        vm: vmRef,
        network: netRef,
        device: String(x.snapshot.device),
        mac: String(x.snapshot.MAC),
      }),
    );
    pool.db.mod('VM', vmRef, { VIFs: [...(pool.db.get('VM', vmRef)!.VIFs as string[]), vif] });
    const net = pool.db.get('network', netRef)!;
    pool.db.mod('network', netRef, { VIFs: [...(net.VIFs as string[]), vif] });
  }
  return [vmRef];
}

export function restoreDb(_pool: Pool, xml: string, dryRun: boolean): void {
  let parsed: ReturnType<typeof parseDbDump>;
  try {
    parsed = parseDbDump(xml);
  } catch (e) {
    throw new Failure('RESTORE_TARGET_MISSING_DEVICE', [(e as Error).message]);
  }
  if (Number(parsed.manifest.schema_major_vsn) !== 5) {
    throw new Failure('RESTORE_INCOMPATIBLE_VERSION', [
      `schema ${parsed.manifest.schema_major_vsn}.${parsed.manifest.schema_minor_vsn}`,
    ]);
  }
  if (dryRun) return;
  // A real pool restarts on the restored database; the simulator checks only (README).
  throw new Failure('OPERATION_NOT_ALLOWED', [
    'the simulator restores pool databases with dry_run=true only',
  ]);
}
