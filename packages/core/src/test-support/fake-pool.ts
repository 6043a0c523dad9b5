/**
 * An in-memory `PoolPort` for the use-cases' tests: a pool with two SRs, a few VMs and a custom
 * template, VDIs that can be created, copied, renamed and attached (to a made-up device path).
 * It keeps the promises the PoolPort suite checks, as the real adapter over xapi does.
 * Not part of the package's API: not built, exported only under the `source` condition.
 */
import type { Attachment, PoolInfo, PoolPort, SrInfo, VdiInfo, VmInfo } from '../app/ports.js';

class FakePoolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface FakeVdi extends VdiInfo {
  description: string;
}

const text = new TextEncoder();

export class FakePool implements PoolPort {
  readonly info: PoolInfo = { uuid: 'f0000000-0000-4000-8000-000000000001', defaultSrUuid: null };
  readonly srList: { uuid: string; name: string; description: string; type: string }[] = [
    {
      uuid: 'f0000000-0000-4000-8000-0000000005a1',
      name: 'Local storage',
      description: '',
      type: 'ext',
    },
    { uuid: 'f0000000-0000-4000-8000-0000000005a2', name: 'NFS', description: '', type: 'nfs' },
  ];
  readonly vdis = new Map<string, FakeVdi>();
  readonly vmList: VmInfo[];
  /** Attached VDIs (uuid -> how many attachments). */
  readonly attached = new Map<string, number>();
  /** Bodies imported for real (not dry runs). */
  readonly imported: Uint8Array[] = [];
  #next = 0;

  constructor() {
    this.info.defaultSrUuid = this.srList[0]!.uuid;
    this.vmList = [
      {
        uuid: 'f0000000-0000-4000-8000-0000000000b1',
        name: 'web',
        isTemplate: false,
        srUuids: [this.srList[0]!.uuid],
      },
      {
        uuid: 'f0000000-0000-4000-8000-0000000000b2',
        name: 'db',
        isTemplate: false,
        srUuids: [this.srList[1]!.uuid],
      },
      { uuid: 'f0000000-0000-4000-8000-0000000000b3', name: 'tpl', isTemplate: true, srUuids: [] },
    ];
  }

  #uuid(): string {
    return `f0000000-0000-4000-8000-${String(++this.#next).padStart(12, '0')}`;
  }

  #sr(uuid: string) {
    const sr = this.srList.find((s) => s.uuid === uuid);
    if (!sr) throw new FakePoolError('UUID_INVALID', `no SR ${uuid}`);
    return sr;
  }

  #vdi(uuid: string): FakeVdi {
    const v = this.vdis.get(uuid);
    if (!v) throw new FakePoolError('UUID_INVALID', `no VDI ${uuid}`);
    return v;
  }

  async pool(): Promise<PoolInfo> {
    return { ...this.info };
  }

  async srs(): Promise<SrInfo[]> {
    return this.srList.map((s) => ({
      ...s,
      vdis: [...this.vdis.values()]
        .filter((v) => v.srUuid === s.uuid)
        .map((v) => ({ uuid: v.uuid, name: v.name, description: v.description })),
    }));
  }

  backupVdiUuid(srUuid: string): string {
    // Deterministic per SR, as xapi's is (it hashes the SR's uuid); the form does not matter.
    return `b${srUuid.slice(1)}`;
  }

  async findVdi(uuid: string): Promise<VdiInfo | null> {
    const v = this.vdis.get(uuid);
    return v
      ? { uuid: v.uuid, name: v.name, srUuid: v.srUuid, virtualSize: v.virtualSize, type: v.type }
      : null;
  }

  async createBackupVdi(srUuid: string, sizeBytes: number): Promise<VdiInfo> {
    this.#sr(srUuid);
    const uuid = this.backupVdiUuid(srUuid);
    if (this.vdis.has(uuid)) throw new FakePoolError('VDI_EXISTS', `VDI ${uuid} exists`);
    const v: FakeVdi = {
      uuid,
      name: 'Pool Metadata Backup',
      description: '',
      srUuid,
      virtualSize: sizeBytes,
      type: 'user',
    };
    this.vdis.set(uuid, v);
    return (await this.findVdi(uuid))!;
  }

  async attach(vdiUuid: string, _opts: { readOnly: boolean }): Promise<Attachment> {
    this.#vdi(vdiUuid);
    this.attached.set(vdiUuid, (this.attached.get(vdiUuid) ?? 0) + 1);
    let done = false;
    return {
      devicePath: `/dev/fake/${vdiUuid}`,
      detach: async () => {
        if (done) return;
        done = true;
        const n = (this.attached.get(vdiUuid) ?? 1) - 1;
        if (n === 0) this.attached.delete(vdiUuid);
        else this.attached.set(vdiUuid, n);
      },
    };
  }

  async copyVdi(vdiUuid: string, nameLabel: string): Promise<VdiInfo> {
    const src = this.#vdi(vdiUuid);
    const uuid = this.#uuid();
    this.vdis.set(uuid, { ...src, uuid, name: nameLabel, description: `copy of ${vdiUuid}` });
    return (await this.findVdi(uuid))!;
  }

  async dumpDatabase(): Promise<Uint8Array> {
    return text.encode(`<database pool="${this.info.uuid}"/>`);
  }

  async vms(): Promise<VmInfo[]> {
    return this.vmList.map((v) => ({ ...v, srUuids: [...v.srUuids] }));
  }

  async exportMetadata(vmUuid: string): Promise<Uint8Array> {
    const vm = this.vmList.find((v) => v.uuid === vmUuid);
    if (!vm) throw new FakePoolError('UUID_INVALID', `no VM ${vmUuid}`);
    return text.encode(`<vm uuid="${vm.uuid}" name="${vm.name}"/>`);
  }

  async importMetadata(body: Uint8Array, opts: { force: boolean; dryRun: boolean }): Promise<void> {
    if (body.length === 0) throw new FakePoolError('IMPORT_ERROR', 'empty export');
    if (!opts.dryRun) this.imported.push(body.slice());
  }

  async setSrNames(srUuid: string, name: string, description: string): Promise<void> {
    const sr = this.#sr(srUuid);
    sr.name = name;
    sr.description = description;
  }

  async setVdiNames(vdiUuid: string, name: string, description: string): Promise<void> {
    const v = this.#vdi(vdiUuid);
    v.name = name;
    v.description = description;
  }
}
