import { type Db, NULL, newRef, type Rec } from './model.js';
import { Prng } from './prng.js';
import {
  GiB,
  mac,
  networkRecord,
  srRecord,
  vbdRecord,
  vdiRecord,
  vifRecord,
  vmRecord,
  XAPI_MAJOR,
  XAPI_MINOR,
} from './records.js';
/** Creates the host, its control domain and the pool on a fresh database. */
export function seedHostAndPool(
  db: Db,
  r: Prng,
  defaultSr: string,
): { host: string; dom0: string } {
  const hostUuid = r.uuid();
  const host = newRef();
  const dom0Uuid = r.uuid();
  const dom0 = db.add(
    'VM',
    vmRecord({
      uuid: dom0Uuid,
      name: `Control domain on host: xcp-host-${hostUuid.slice(0, 4)}`,
      control: true,
      macSeed: r.uuid(),
      memory: 4 * GiB,
      vcpus: 8,
      residentOn: host,
      power: 'Running',
    }),
  );
  db.add(
    'host',
    {
      uuid: hostUuid,
      name_label: `xcp-host-${hostUuid.slice(0, 4)}`,
      name_description: 'Default install',
      address: '127.0.0.1',
      hostname: `xcp-host-${hostUuid.slice(0, 4)}`,
      enabled: true,
      API_version_major: String(XAPI_MAJOR),
      API_version_minor: String(XAPI_MINOR),
      API_version_vendor: 'XenSource',
      software_version: {
        product_version: '8.3.0',
        product_brand: 'XCP-ng',
        build_number: 'release/yangtze',
        xapi: `${XAPI_MAJOR}.${XAPI_MINOR}`,
        platform_version: '3.4.0',
      },
      resident_VMs: [dom0],
      control_domain: dom0,
      other_config: {},
      PBDs: [],
      PIFs: [],
      memory_overhead: '0',
      cpu_info: { cpu_count: '8', vendor: 'GenuineIntel', modelname: 'Simulated CPU' },
      tags: [],
    },
    host,
  );
  db.add('pool', {
    uuid: r.uuid(),
    name_label: 'Simulated pool',
    name_description: '',
    master: host,
    default_SR: defaultSr,
    suspend_image_SR: defaultSr,
    crash_dump_SR: defaultSr,
    other_config: {},
    ha_enabled: false,
    tags: [],
    restrictions: {},
  });
  return { host, dom0 };
}

export interface SeedOptions {
  vms: number;
  srs: number;
  seed: number;
}

/**
 * Seeds a pool: `srs` shared file SRs, networks, `vms` VMs spread over the SRs (one to three
 * disks each, a CD drive, one or two VIFs), a few custom templates with disks, default
 * templates, and some snapshots. Returns the VDI images the SRs must hold.
 */
export function seedPool(
  db: Db,
  o: SeedOptions,
): { images: { sr: string; vdi: string; size: number }[] } {
  const r = new Prng(o.seed);
  const images: { sr: string; vdi: string; size: number }[] = [];
  const srRefs: string[] = [];
  for (let i = 0; i < Math.max(1, o.srs); i++) {
    srRefs.push(
      db.add(
        'SR',
        srRecord({
          uuid: r.uuid(),
          name: `Shared storage ${i + 1}`,
          desc: `NFS SR ${i + 1} [storage${i + 1}.example:/export/xcp]`,
        }),
      ),
    );
  }
  const { dom0 } = seedHostAndPool(db, r, srRefs[0]!);
  const nets = [
    'Pool-wide network associated with eth0',
    'Pool-wide network associated with eth1',
    'Storage VLAN 20',
  ].map((name, i) =>
    db.add(
      'network',
      networkRecord({ uuid: r.uuid(), name, bridge: i < 2 ? `xenbr${i}` : 'xapi1' }),
    ),
  );
  void dom0;
  const vdiOn = (sr: string, name: string, size: number) => {
    const uuid = r.uuid();
    const ref = db.add(
      'VDI',
      vdiRecord({ uuid, name, sr, size, desc: `Created by template provisioner` }),
    );
    const srRec = db.get('SR', sr)!;
    (srRec.VDIs as string[]).push(ref);
    images.push({ sr: srRec.uuid as string, vdi: uuid, size });
    return ref;
  };
  const makeVm = (name: string, template: boolean, index: number) => {
    const ref = newRef();
    const rec = vmRecord({
      uuid: r.uuid(),
      name,
      desc: template ? 'Custom template' : `Workload ${index}`,
      template,
      macSeed: r.uuid(),
      memory: (1 + r.int(8)) * GiB,
      vcpus: 1 + r.int(4),
    });
    (rec.other_config as Record<string, string>).base_template_name = r.pick([
      'Debian Bookworm 12',
      'Windows Server 2022 (64-bit)',
      'Rocky Linux 9',
      'Ubuntu Noble Numbat 24.04',
    ]);
    db.add('VM', rec, ref);
    const sr = srRefs[index % srRefs.length]!;
    const disks = 1 + r.int(3);
    for (let d = 0; d < disks; d++) {
      const vdi = vdiOn(
        d === 0 ? sr : r.pick(srRefs),
        `${name} ${d === 0 ? 'root' : `data ${d}`}`,
        (8 + r.int(56)) * GiB,
      );
      const vbd = db.add(
        'VBD',
        vbdRecord({
          uuid: r.uuid(),
          vm: ref,
          vdi,
          userdevice: String(d),
          type: 'Disk',
          bootable: d === 0,
        }),
      );
      (rec.VBDs as string[]).push(vbd);
      (db.get('VDI', vdi)!.VBDs as string[]).push(vbd);
    }
    const cd = db.add(
      'VBD',
      vbdRecord({ uuid: r.uuid(), vm: ref, vdi: NULL, userdevice: '3', type: 'CD', empty: true }),
    );
    (rec.VBDs as string[]).push(cd);
    const vifs = 1 + r.int(2);
    for (let v = 0; v < vifs; v++) {
      const net = nets[v % nets.length]!;
      const vif = db.add(
        'VIF',
        vifRecord({ uuid: r.uuid(), vm: ref, network: net, device: String(v), mac: mac(r) }),
      );
      (rec.VIFs as string[]).push(vif);
      (db.get('network', net)!.VIFs as string[]).push(vif);
    }
    rec.last_booted_record = lastBooted(rec);
    return ref;
  };
  for (let i = 0; i < o.vms; i++) makeVm(`vm-${String(i + 1).padStart(4, '0')}`, false, i);
  const templates = Math.max(1, Math.min(5, Math.ceil(o.vms / 8)));
  for (let i = 0; i < templates; i++) makeVm(`Custom template ${i + 1}`, true, i);
  for (const name of [
    'Debian Bookworm 12',
    'Windows Server 2022 (64-bit)',
    'Rocky Linux 9',
    'Other install media',
  ]) {
    db.add(
      'VM',
      vmRecord({
        uuid: r.uuid(),
        name,
        template: true,
        defaultTemplate: true,
        macSeed: r.uuid(),
        memory: 2 * GiB,
        vcpus: 2,
      }),
    );
  }
  // A few snapshots (never backed up, as upstream).
  const vmRefs = [...db.table('VM').entries()]
    .filter(([, v]) => !v.is_a_template && !v.is_control_domain)
    .slice(0, Math.min(3, o.vms));
  for (const [ref, vm] of vmRefs) {
    const snap = db.add(
      'VM',
      vmRecord({
        uuid: r.uuid(),
        name: `${vm.name_label} snapshot`,
        snapshotOf: ref,
        template: true,
        macSeed: r.uuid(),
        memory: GiB,
        vcpus: 1,
      }),
    );
    (vm.snapshots as string[]).push(snap);
  }
  return { images };
}

/** The VM record as xapi stores it in last_booted_record: the record as an XML-RPC struct. */
function lastBooted(rec: Rec): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (k === 'last_booted_record') continue;
    const val = typeof v === 'object' ? JSON.stringify(v) : String(v);
    parts.push(
      `<member><name>${k}</name><value>${val.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</value></member>`,
    );
  }
  return `<value><struct>${parts.join('')}</struct></value>`;
}
