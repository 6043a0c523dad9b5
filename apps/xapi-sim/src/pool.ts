import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { encodeValue, type XmlRpcValue } from '@xsmeta/xapi';
import { Failure, xapiDate } from './errors.js';
import { type Db, NULL, newRef, type Rec } from './model.js';
import { backupVdiUuid, vbdRecord, vdiRecord } from './seed.js';

export const USERNAME = 'root';

/** Simulated pool: state, RPC methods and HTTP handlers. */
export class Pool {
  db: Db;
  private sessions = new Set<string>();
  private generation = 1;
  private saveTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly dir: string,
    private readonly password: string,
    db: Db,
  ) {
    this.db = db;
  }

  get devDir() {
    return join(this.dir, 'dev');
  }
  srDir(srUuid: string) {
    return join(this.dir, 'sr', srUuid);
  }
  image(srUuid: string, vdiUuid: string) {
    return join(this.srDir(srUuid), `${vdiUuid}.img`);
  }

  save(): void {
    const tmp = join(this.dir, 'pool.json.tmp');
    writeFileSync(tmp, JSON.stringify({ generation: this.generation, db: this.db.toJSON() }));
    renameSync(tmp, join(this.dir, 'pool.json'));
    this.db.dirty = false;
  }

  scheduleSave(): void {
    if (!this.db.dirty || this.saveTimer) return;
    this.generation++;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.save();
    }, 500);
  }

  flush(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = null;
    if (this.db.dirty) this.save();
  }

  pool(): [string, Rec] {
    const [e] = this.db.table('pool').entries();
    return e!;
  }

  dom0(): string {
    for (const [ref, vm] of this.db.table('VM')) if (vm.is_control_domain) return ref;
    throw new Failure('INTERNAL_ERROR', ['no control domain']);
  }

  login(user: string, password: string): string {
    if (user !== USERNAME || password !== this.password)
      throw new Failure('SESSION_AUTHENTICATION_FAILED', [user, 'Authentication failure']);
    const ref = newRef();
    this.sessions.add(ref);
    return ref;
  }

  checkSession(ref: unknown): void {
    if (typeof ref !== 'string' || !this.sessions.has(ref))
      throw new Failure('SESSION_INVALID', [String(ref)]);
  }

  logout(ref: string): void {
    this.sessions.delete(ref);
  }

  rec(cls: string, ref: unknown): Rec {
    const r = typeof ref === 'string' ? this.db.get(cls, ref) : undefined;
    if (!r) throw new Failure('HANDLE_INVALID', [cls, String(ref)]);
    return r;
  }

  // ---- tasks
  createTask(label: string, description = ''): string {
    return this.db.add('task', {
      uuid: randomUUID(),
      name_label: label,
      name_description: description,
      allowed_operations: ['cancel'],
      current_operations: {},
      created: xapiDate(),
      finished: '19700101T00:00:00Z',
      status: 'pending',
      resident_on: this.pool()[1].master as string,
      progress: 0,
      type: '',
      result: '',
      error_info: [],
      other_config: {},
      subtask_of: NULL,
      subtasks: [],
      backtrace: '()',
    });
  }

  finishTask(ref: string, outcome: { result: XmlRpcValue } | { error: Failure }): void {
    if (!this.db.get('task', ref)) return;
    const finished = xapiDate();
    if ('result' in outcome) {
      this.db.mod('task', ref, {
        status: 'success',
        progress: 1,
        finished,
        result: encodeValue(outcome.result),
      });
    } else {
      this.db.mod('task', ref, {
        status: 'failure',
        progress: 1,
        finished,
        error_info: [outcome.error.code, ...outcome.error.params],
      });
    }
  }

  // ---- storage
  createVdi(spec: Rec): string {
    const srRef = spec.SR as string;
    const sr = this.rec('SR', srRef);
    const size = Number(spec.virtual_size ?? 0);
    if (!Number.isSafeInteger(size) || size <= 0)
      throw new Failure('VDI_INVALID_SIZE', [String(spec.virtual_size)]);
    const name = String(spec.name_label ?? '');
    const type = String(spec.type ?? 'user');
    // xapi's rule (xapi_vdi.ml): the Pool Metadata Backup VDI of an SR has a derived uuid.
    const uuid =
      type === 'user' && name === 'Pool Metadata Backup'
        ? backupVdiUuid(sr.uuid as string)
        : randomUUID();
    if (this.db.byUuid('VDI', uuid)) throw new Failure('UUID_INVALID', ['VDI', uuid]);
    mkdirSync(this.srDir(sr.uuid as string), { recursive: true });
    const path = this.image(sr.uuid as string, uuid);
    writeFileSync(path, '');
    truncateSync(path, size);
    const ref = this.db.add('VDI', {
      ...vdiRecord({
        uuid,
        name,
        desc: String(spec.name_description ?? ''),
        sr: srRef,
        size,
        type,
        readOnly: Boolean(spec.read_only),
      }),
      sharable: Boolean(spec.sharable),
      other_config: (spec.other_config as Record<string, string>) ?? {},
      sm_config: (spec.sm_config as Record<string, string>) ?? {},
      tags: (spec.tags as string[]) ?? [],
    });
    this.db.mod('SR', srRef, { VDIs: [...(sr.VDIs as string[]), ref] });
    return ref;
  }

  destroyVdi(ref: string): void {
    const vdi = this.rec('VDI', ref);
    if ((vdi.VBDs as string[]).some((v) => this.db.get('VBD', v)?.currently_attached))
      throw new Failure('VDI_IN_USE', [ref, 'destroy']);
    const sr = this.rec('SR', vdi.SR);
    rmSync(this.image(sr.uuid as string, vdi.uuid as string), { force: true });
    this.db.mod('SR', vdi.SR as string, { VDIs: (sr.VDIs as string[]).filter((v) => v !== ref) });
    this.db.del('VDI', ref);
  }

  scanSr(srRef: string): void {
    const sr = this.rec('SR', srRef);
    const dir = this.srDir(sr.uuid as string);
    if (!existsSync(dir)) return;
    const known = new Set((sr.VDIs as string[]).map((r) => this.db.get('VDI', r)?.uuid));
    const added: string[] = [];
    for (const f of readdirSync(dir).sort()) {
      const m = /^([0-9a-f-]{36})\.img$/.exec(f);
      if (!m || known.has(m[1]!)) continue;
      const size = statSync(join(dir, f)).size;
      added.push(this.db.add('VDI', vdiRecord({ uuid: m[1]!, name: '', sr: srRef, size })));
    }
    if (added.length) this.db.mod('SR', srRef, { VDIs: [...(sr.VDIs as string[]), ...added] });
  }

  plug(vbdRef: string): void {
    const vbd = this.rec('VBD', vbdRef);
    if (vbd.currently_attached) throw new Failure('DEVICE_ALREADY_ATTACHED', [vbdRef]);
    const vm = this.rec('VM', vbd.VM);
    if (!vm.is_control_domain)
      throw new Failure('VM_BAD_POWER_STATE', [
        vbd.VM as string,
        'running',
        vm.power_state as string,
      ]);
    const vdi = this.rec('VDI', vbd.VDI);
    const sr = this.rec('SR', vdi.SR);
    const used = new Set(
      [...this.db.table('VBD').values()]
        .filter((v) => v.VM === vbd.VM && v.currently_attached)
        .map((v) => v.device),
    );
    let letter = 1;
    while (used.has(`xvd${String.fromCharCode(97 + letter)}`)) letter++;
    const device = `xvd${String.fromCharCode(97 + letter)}`;
    mkdirSync(this.devDir, { recursive: true });
    const link = join(this.devDir, device);
    rmSync(link, { force: true });
    symlinkSync(this.image(sr.uuid as string, vdi.uuid as string), link);
    this.db.mod('VBD', vbdRef, {
      currently_attached: true,
      device,
      userdevice: vbd.userdevice === 'autodetect' ? String(letter) : String(vbd.userdevice),
    });
  }

  unplug(vbdRef: string): void {
    const vbd = this.rec('VBD', vbdRef);
    if (!vbd.currently_attached) throw new Failure('DEVICE_ALREADY_DETACHED', [vbdRef]);
    rmSync(join(this.devDir, vbd.device as string), { force: true });
    this.db.mod('VBD', vbdRef, { currently_attached: false, device: '' });
  }

  createVbd(spec: Rec): string {
    const vm = this.rec('VM', spec.VM);
    const empty = Boolean(spec.empty);
    const vdiRef = empty ? NULL : (spec.VDI as string);
    const vdi = empty ? undefined : this.rec('VDI', vdiRef);
    const ref = this.db.add(
      'VBD',
      vbdRecord({
        uuid: randomUUID(),
        vm: spec.VM as string,
        vdi: vdiRef,
        userdevice: String(spec.userdevice ?? 'autodetect'),
        type: spec.type === 'CD' ? 'CD' : 'Disk',
        bootable: Boolean(spec.bootable),
        empty,
        mode: String(spec.mode ?? 'RW'),
        // Kept as given, as xapi does: clients mark their VBDs there (xsmeta-attach).
        other_config: stringMap(spec.other_config),
      }),
    );
    this.db.mod('VM', spec.VM as string, { VBDs: [...(vm.VBDs as string[]), ref] });
    if (vdi) this.db.mod('VDI', vdiRef, { VBDs: [...(vdi.VBDs as string[]), ref] });
    return ref;
  }

  destroyVbd(ref: string): void {
    const vbd = this.rec('VBD', ref);
    if (vbd.currently_attached)
      throw new Failure('OPERATION_NOT_ALLOWED', ['VBD is currently attached']);
    const vm = this.db.get('VM', vbd.VM as string);
    if (vm)
      this.db.mod('VM', vbd.VM as string, { VBDs: (vm.VBDs as string[]).filter((v) => v !== ref) });
    const vdi = this.db.get('VDI', vbd.VDI as string);
    if (vdi)
      this.db.mod('VDI', vbd.VDI as string, {
        VBDs: (vdi.VBDs as string[]).filter((v) => v !== ref),
      });
    this.db.del('VBD', ref);
  }

  destroyVm(ref: string): void {
    const vm = this.rec('VM', ref);
    for (const vbd of vm.VBDs as string[]) if (this.db.get('VBD', vbd)) this.destroyVbd(vbd);
    for (const vif of vm.VIFs as string[]) {
      const v = this.db.get('VIF', vif);
      const net = v && this.db.get('network', v.network as string);
      if (net)
        this.db.mod('network', v.network as string, {
          VIFs: (net.VIFs as string[]).filter((x) => x !== vif),
        });
      this.db.del('VIF', vif);
    }
    this.db.del('VM', ref);
  }
}

/** An XAPI `(string -> string) map` argument: string values kept, anything else dropped. */
function stringMap(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object') return {};
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>).filter(
      (e): e is [string, string] => typeof e[1] === 'string',
    ),
  );
}
