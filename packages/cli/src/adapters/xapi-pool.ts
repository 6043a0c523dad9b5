import type { Attachment, PoolPort, SrInfo, VmInfo } from '@xsmeta/core';
import {
  backupVdiUuid,
  exportNetworks,
  NULL_REF,
  type VbdRecord,
  type XapiClient,
  XapiError,
  type XapiRecordTypes,
} from '@xsmeta/xapi';
import type { Settings } from '../config.js';
import { myOwner, ownerGone, parseOwner } from '../process/owner.js';
import { interrupted, onCleanup } from '../process/signals.js';
import { takeVdiLock } from '../remote/lock.js';
import { isRemote, remoteAttachment } from '../remote/mode.js';
import { copyBytes } from './disk.js';
import { ControlDomainVbds, unlessGone } from './dom0-vbd.js';
import { spoolExport } from './export-spool.js';

/** PoolPort over XAPI (the classes and calls of xen-api's ocaml/idl/datamodel*.ml). */
export class XapiPool implements PoolPort {
  private readonly dom0: ControlDomainVbds;
  constructor(
    readonly xapi: XapiClient,
    private readonly settings: Settings,
  ) {
    this.dom0 = new ControlDomainVbds(xapi, settings);
  }

  /** Every record of a class, typed as packages/xapi's records.ts describes it. */
  private all<K extends keyof XapiRecordTypes>(cls: K): Promise<Map<string, XapiRecordTypes[K]>> {
    return this.xapi.getAllRecords<XapiRecordTypes[K]>(cls);
  }

  /** One record, typed (a destroyed object is HANDLE_INVALID: see unlessGone). */
  private one<K extends keyof XapiRecordTypes>(cls: K, ref: string): Promise<XapiRecordTypes[K]> {
    return this.xapi.getRecord<XapiRecordTypes[K]>(cls, ref);
  }

  async pool() {
    const [p] = (await this.all('pool')).values();
    if (!p) throw new XapiError('XAPI_PROTOCOL', ['pool'], 'the pool has no pool object');
    const def = p.default_SR;
    const defaultSrUuid =
      def && def !== NULL_REF
        ? await this.xapi.call<string>('SR.get_uuid', def).catch(() => null)
        : null;
    return { uuid: p.uuid, defaultSrUuid };
  }

  /**
   * Every SR of the pool, ISO SRs included: the SR metadata of a backup names them all, as
   * upstream's python3/libexec/backup-sr-metadata.py (SR.get_all_records, no filter) does.
   */
  async srs(): Promise<SrInfo[]> {
    return srInfos(await this.srListing());
  }

  /** The SR and VDI listings, only the fields the SR metadata and the VM-to-SR map use. */
  private async srListing() {
    // Only the fields named: a large pool's records are never decoded whole.
    const [srs, vdis] = await Promise.all([
      this.xapi.getAllRecordsFields('SR', ['uuid', 'name_label', 'name_description', 'type']),
      this.xapi.getAllRecordsFields('VDI', [
        'uuid',
        'name_label',
        'name_description',
        'read_only',
        'SR',
      ]),
    ]);
    return { srs, vdis };
  }

  /**
   * What `vms()` and `srs()` give, from three listings instead of six: the SR and VDI
   * listings serve both, and a VBD's VDI is read from the VDIs' `VBDs`, the other end of the
   * same relation (xapi keeps the two ends together: ocaml/idl/datamodel.ml `all_relations`,
   * VBD.VDI and VDI.VBDs), so the VBDs are not listed at all. Asked at once: the pool works
   * out the next listing while this side decodes one.
   */
  async inventory(): Promise<{ vms: VmInfo[]; srs: SrInfo[] }> {
    const vmsP = this.vmListing();
    const srsP = this.xapi.getAllRecordsFields('SR', [
      'uuid',
      'name_label',
      'name_description',
      'type',
    ]);
    const vdisP = this.xapi.getAllRecordsFields('VDI', [
      'uuid',
      'name_label',
      'name_description',
      'read_only',
      'SR',
      'VBDs',
    ]);
    const [vms, srs, vdis] = await Promise.all([vmsP, srsP, vdisP]);
    const vbds = new Map<string, { VDI: string }>();
    for (const [ref, vdi] of vdis) for (const vbd of vdi.VBDs ?? []) vbds.set(vbd, { VDI: ref });
    return { vms: vmInfos(vms, vbds, vdis, srs), srs: srInfos({ srs, vdis }) };
  }

  backupVdiUuid(srUuid: string): string {
    return backupVdiUuid(srUuid);
  }

  async findVdi(uuid: string) {
    let ref: string;
    try {
      ref = await this.xapi.call<string>('VDI.get_by_uuid', uuid);
    } catch (e) {
      if (e instanceof XapiError && e.code === 'UUID_INVALID') return null;
      throw e;
    }
    // Destroyed between the lookup and the read (another run's unfinished copy, say): none.
    const v = await this.one('VDI', ref).catch(unlessGone);
    if (v === null) return null;
    const srUuid = await this.xapi.call<string>('SR.get_uuid', v.SR);
    return {
      uuid,
      name: String(v.name_label),
      srUuid,
      virtualSize: Number(v.virtual_size),
      type: String(v.type),
    };
  }

  async createBackupVdi(srUuid: string, size: number) {
    const sr = await this.xapi.call<string>('SR.get_by_uuid', srUuid);
    const ref = await this.xapi.call<string>('VDI.create', {
      name_label: 'Pool Metadata Backup',
      name_description: 'xsmeta: ring of VM metadata backups',
      SR: sr,
      virtual_size: String(size),
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    });
    const uuid = await this.xapi.call<string>('VDI.get_uuid', ref);
    return { uuid, name: 'Pool Metadata Backup', srUuid, virtualSize: size, type: 'user' };
  }

  async copyVdi(vdiUuid: string, nameLabel: string) {
    const src = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    const rec = await this.one('VDI', src);
    const size = Number(rec.virtual_size);
    // Named as unfinished until it verifies: a run killed mid-copy leaves no "kept" copy.
    if (interrupted()) throw new Error('interrupted: not copying the disk');
    const creating = this.xapi.call<string>('VDI.create', {
      name_label: `${nameLabel} (incomplete copy)`,
      name_description: `byte-for-byte copy of VDI ${vdiUuid}, made by xsmeta before converting it`,
      SR: rec.SR,
      virtual_size: String(size),
      type: 'user',
      sharable: false,
      read_only: false,
      // Its creator, as on our VBDs: a later run removes it if this one dies before it is done.
      other_config: { 'xsmeta-copy-of': vdiUuid, 'xsmeta-owner': myOwner() },
      xenstore_data: {},
      sm_config: {},
      tags: [],
    });
    // A copy that did not verify is no copy: removed, the original untouched, also when a
    // signal ends the run, even while VDI.create is in flight (registered before it returns;
    // clean-ups run last-in first, so after the copy's VBDs are gone).
    const destroy = async () => {
      const ref = await creating.catch(() => null);
      if (ref !== null) await this.xapi.call('VDI.destroy', ref).catch(() => {});
    };
    const drop = onCleanup(destroy);
    let uuid: string;
    try {
      const ref = await creating;
      if (interrupted()) throw new Error('interrupted: not copying the disk');
      uuid = await this.xapi.call<string>('VDI.get_uuid', ref);
      await copyBytes((id, o) => this.attach(id, o), vdiUuid, uuid);
      await this.xapi.call('VDI.set_name_label', ref, nameLabel);
    } catch (e) {
      await destroy();
      throw e;
    } finally {
      drop();
    }
    const srUuid = await this.xapi.call<string>('SR.get_uuid', rec.SR);
    return { uuid, name: nameLabel, srUuid, virtualSize: size, type: 'user' };
  }

  /**
   * Unfinished copies (see copyVdi) on the SR that a dead run left, SIGKILLed or its host lost
   * mid-copy: still named "(incomplete copy)", and their creator is gone (see ownerGone; one
   * with no creator recorded is an older xsmeta's, and the caller holds the SR's lock, under
   * which every copy is made). Their VBDs of ours are unplugged and destroyed, then the VDI.
   * A copy some other VBD uses is left alone. Returns the uuids removed.
   */
  async removeDeadCopies(srUuid: string): Promise<string[]> {
    const sr = await this.xapi.call<string>('SR.get_by_uuid', srUuid);
    const removed: string[] = [];
    for (const [ref, v] of await this.all('VDI')) {
      const oc = v.other_config ?? {};
      if (v.SR !== sr || oc['xsmeta-copy-of'] === undefined) continue;
      if (!String(v.name_label ?? '').endsWith(' (incomplete copy)')) continue;
      const owner = oc['xsmeta-owner'];
      if (owner !== undefined && !ownerGone(parseOwner(owner))) continue;
      const vbds: [string, VbdRecord][] = [];
      for (const vbd of v.VBDs ?? []) {
        const rec = await this.one('VBD', vbd).catch(unlessGone);
        if (rec) vbds.push([vbd, rec]);
      }
      const ours = (r: VbdRecord) => r.other_config?.['xsmeta-attach'] === 'true';
      if (!vbds.every(([, r]) => ours(r))) continue;
      for (const [vbd, rec] of vbds) {
        if (rec.currently_attached) await this.dom0.unplug(vbd).catch(unlessGone);
        await this.xapi.call('VBD.destroy', vbd).catch(unlessGone);
      }
      await this.xapi.call('VDI.destroy', ref).catch(unlessGone);
      removed.push(v.uuid);
    }
    return removed;
  }

  /**
   * A writer first takes the VDI's lock on the pool (remote/lock.ts), then: in remote mode the
   * VDI is only named for the remote device; on a pool host it is plugged into dom0.
   */
  async attach(vdiUuid: string, opts: { readOnly: boolean }): Promise<Attachment> {
    const vdi = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    const unlock = opts.readOnly ? null : await takeVdiLock(this.xapi, vdi, vdiUuid);
    // Released when the run ends, or on a signal (a kill leaves it to its expiry or owner check).
    const drop = unlock ? onCleanup(unlock) : () => {};
    const release = async () => {
      drop();
      await unlock?.();
    };
    if (isRemote(this.settings))
      return remoteAttachment(this.xapi, vdi, vdiUuid, opts.readOnly, release);
    try {
      const att = await this.dom0.attach(vdi, vdiUuid, opts);
      return { ...att, detach: () => att.detach().finally(release) };
    } catch (e) {
      await release();
      throw e;
    }
  }

  /** Streamed (the backup writes it into the record chunk by chunk). */
  dumpDatabase() {
    return this.xapi.dumpDatabaseStream();
  }

  async vms(): Promise<VmInfo[]> {
    const vms = await this.vmListing();
    const vbds = await this.xapi.getAllRecordsFields('VBD', ['VDI']);
    const vdis = await this.xapi.getAllRecordsFields('VDI', ['SR']);
    const srs = await this.xapi.getAllRecordsFields('SR', ['uuid']);
    return vmInfos(vms, vbds, vdis, srs);
  }

  private vmListing() {
    // Only the fields used here: a 5,000-VM pool's VM records decoded whole took 287 MiB.
    return this.xapi.getAllRecordsFields('VM', [
      'uuid',
      'name_label',
      'is_a_template',
      'is_default_template',
      'is_control_domain',
      'is_a_snapshot',
      'other_config',
      'VBDs',
    ]);
  }

  exportMetadata(vmUuid: string) {
    // As `xe vm-export --metadata` (include-snapshots defaults to false,
    // ocaml/xapi-cli-server/cli_operations.ml): a restore must not bring back snapshots that
    // still exist, nor fail on them without -f.
    return this.xapi.exportMetadata({ uuid: vmUuid }, { exportSnapshots: false });
  }

  /**
   * `export_metadata?all=true` (no snapshots, no control domain): one request and one pass
   * of locks for the whole pool, split client-side into the per-VM exports xapi would have
   * sent (splitExport follows export.ml's update_table and make_* rules).
   */
  async exportAll(vmUuids?: readonly string[]) {
    const body = await this.xapi.exportMetadataStream(
      { all: true },
      { exportSnapshots: false, includeDom0: false },
    );
    return spoolExport(body, vmUuids);
  }

  /** Every VM object of the pool (`VM.get_all`: references only, cheap to ask). */
  async vmCount() {
    return (await this.xapi.call<string[]>('VM.get_all')).length;
  }

  async importMetadata(body: Uint8Array, opts: { force: boolean; dryRun: boolean }) {
    await this.xapi.importMetadata(body, opts);
  }

  /** The pool's networks by name and bridge (xapi's import matches them so: import.ml). */
  async networks() {
    return [...(await this.all('network')).values()].map((n) => ({
      name: String(n.name_label ?? ''),
      bridge: String(n.bridge ?? ''),
    }));
  }

  exportNetworks(body: Uint8Array) {
    return exportNetworks(body);
  }

  async setSrNames(srUuid: string, name: string, description: string) {
    const ref = await this.xapi.call<string>('SR.get_by_uuid', srUuid);
    await this.xapi.call('SR.set_name_label', ref, name);
    await this.xapi.call('SR.set_name_description', ref, description);
  }

  async setVdiNames(vdiUuid: string, name: string, description: string) {
    const ref = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    await this.xapi.call('VDI.set_name_label', ref, name);
    await this.xapi.call('VDI.set_name_description', ref, description);
  }
}

type Listing<C extends keyof XapiRecordTypes, K extends keyof XapiRecordTypes[C]> = Map<
  string,
  Pick<XapiRecordTypes[C], K>
>;

/** The VMs to back up (no dom0, no snapshots, no default templates) and their SRs. */
function vmInfos(
  vms: Listing<
    'VM',
    | 'uuid'
    | 'name_label'
    | 'is_a_template'
    | 'is_default_template'
    | 'is_control_domain'
    | 'is_a_snapshot'
    | 'other_config'
    | 'VBDs'
  >,
  vbds: Listing<'VBD', 'VDI'>,
  vdis: Listing<'VDI', 'SR'>,
  srs: Listing<'SR', 'uuid'>,
): VmInfo[] {
  const out: VmInfo[] = [];
  for (const vm of vms.values()) {
    const oc = vm.other_config ?? {};
    if (vm.is_control_domain || vm.is_a_snapshot) continue;
    if (vm.is_a_template && (oc.default_template === 'true' || vm.is_default_template === true))
      continue;
    const srUuids = new Set<string>();
    for (const vbdRef of vm.VBDs ?? []) {
      const vbd = vbds.get(vbdRef);
      const vdi = vbd && vdis.get(vbd.VDI);
      const sr = vdi && srs.get(vdi.SR);
      if (sr) srUuids.add(sr.uuid);
    }
    out.push({
      uuid: vm.uuid,
      name: String(vm.name_label ?? ''),
      isTemplate: Boolean(vm.is_a_template),
      srUuids: [...srUuids],
    });
  }
  return out.sort(
    (a, b) => Number(a.isTemplate) - Number(b.isTemplate) || a.name.localeCompare(b.name),
  );
}

/** The SR metadata's view of every SR and its VDIs. */
function srInfos(l: {
  srs: Listing<'SR', 'uuid' | 'name_label' | 'name_description' | 'type'>;
  vdis: Listing<'VDI', 'uuid' | 'name_label' | 'name_description' | 'read_only' | 'SR'>;
}): SrInfo[] {
  const bySr = new Map<string, SrInfo['vdis']>();
  for (const v of l.vdis.values()) {
    const list = bySr.get(v.SR) ?? [];
    if (list.length === 0) bySr.set(v.SR, list);
    list.push({
      uuid: v.uuid,
      name: String(v.name_label ?? ''),
      description: String(v.name_description ?? ''),
      readOnly: v.read_only === true,
    });
  }
  return [...l.srs.entries()].map(([ref, s]) => ({
    uuid: s.uuid,
    name: String(s.name_label ?? ''),
    description: String(s.name_description ?? ''),
    type: String(s.type ?? ''),
    vdis: bySr.get(ref) ?? [],
  }));
}
