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
import { dirname, join } from 'node:path';
import { backupVdiUuid, encodeValue, formatXapiDate, type XmlRpcValue } from '@xsmeta/xapi';
import { Failure } from './errors.js';
import { Faults } from './faults.js';
import { type Db, NULL, newRef, type Rec } from './model.js';
import { vbdRecord, vdiRecord } from './records.js';
import { chooseUserdevice, stringMap, VBD_VDI_TYPES } from './vbd.js';

export const USERNAME = 'root';

/** Simulated pool: state, RPC methods and HTTP handlers. */
/** How long the pool stays quiet after a change before the state is saved. */
const SAVE_QUIET_MS = 500;
/** The longest a change waits for its save while requests keep coming. */
const SAVE_MAX_WAIT_MS = 5000;

export class Pool {
  db: Db;
  private sessions = new Set<string>();
  private generation = 1;
  private saveTimer: NodeJS.Timeout | null = null;
  /** When the change that the pending save is for was made. */
  private dirtySince = 0;

  /** export.ml `make_id`: one counter for the life of the process, never reset. */
  exportIds = 0;

  constructor(
    readonly dir: string,
    private readonly password: string,
    db: Db,
    readonly faults: Faults = new Faults(),
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

  /**
   * Saves the state once the pool has been quiet for SAVE_QUIET_MS after a change (at most
   * SAVE_MAX_WAIT_MS after it, however busy). xapi writes its database to disk from threads of
   * its own (ocaml/database/db_connections.ml `flush_dirty_and_maybe_exit`), never in a
   * request's way; the simulator has one thread, and its save (the whole database as JSON,
   * ~180 ms at 1,000 VMs) would stall whatever request it fell in the middle of.
   */
  scheduleSave(): void {
    if (!this.db.dirty) return;
    const now = Date.now();
    if (this.saveTimer) {
      if (now - this.dirtySince >= SAVE_MAX_WAIT_MS) return;
      clearTimeout(this.saveTimer);
    } else {
      this.generation++;
      this.dirtySince = now;
    }
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      this.save();
    }, SAVE_QUIET_MS);
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

  /**
   * session.login_with_password. `trusted`: the call came over the local Unix socket, where
   * xapi pre-authenticates the caller as root and logs in whatever the password
   * (xapi_session.ml `login_with_password`, `Context.preauth` = root).
   */
  login(user: string, password: string, trusted = false): string {
    if (!trusted && (user !== USERNAME || password !== this.password))
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

  private waiting: (() => void)[] = [];

  /**
   * Resolves when `count` callers wait here, or after `timeoutMs`: the importBarrier knob, so
   * that imports racing on a real pool race the same way in a test.
   */
  barrier(count: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(release, timeoutMs);
      const self = this;
      function release() {
        clearTimeout(timer);
        self.waiting = self.waiting.filter((w) => w !== release);
        resolve();
      }
      this.waiting.push(release);
      if (this.waiting.length >= count) for (const w of [...this.waiting]) w();
    });
  }

  // ---- tasks
  createTask(label: string, description = ''): string {
    return this.db.add('task', {
      uuid: randomUUID(),
      name_label: label,
      name_description: description,
      allowed_operations: ['cancel'],
      current_operations: {},
      created: formatXapiDate(new Date()),
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
    const finished = formatXapiDate(new Date());
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
    // xapi checks no size (the SM backend does); a value that is no int64 fails unmarshalling.
    if (!Number.isSafeInteger(size)) throw new Failure('FIELD_TYPE_ERROR', ['virtual_size']);
    if (size < 0) throw new Failure('INTERNAL_ERROR', [`VDI.create: negative size ${size}`]);
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
    // xapi_vdi.ml `destroy_and_data_destroy_common`: the VDI's (unplugged) VBDs go with it.
    for (const vbd of vdi.VBDs as string[]) {
      const b = this.db.get('VBD', vbd);
      if (!b) continue;
      const vm = this.db.get('VM', b.VM as string);
      if (vm)
        this.db.mod('VM', b.VM as string, {
          VBDs: (vm.VBDs as string[]).filter((v) => v !== vbd),
        });
      this.db.del('VBD', vbd);
    }
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

  /**
   * VBD.plug. Into the control domain (xapi_vbd.ml `plug`, loopback branch): the VDI is
   * attached by the storage layer and `device` is its path less `/dev/`, which for a
   * file-backed SR is `sm/backend/<sr-uuid>/<vdi-uuid>` (the link SM makes); the simulator
   * makes that link under its device folder. Any other VM must be running.
   */
  plug(vbdRef: string): void {
    const vbd = this.rec('VBD', vbdRef);
    if (vbd.currently_attached) throw new Failure('DEVICE_ALREADY_ATTACHED', [vbdRef]);
    const vm = this.rec('VM', vbd.VM);
    if (!vm.is_control_domain)
      throw new Failure('VM_BAD_POWER_STATE', [
        vbd.VM as string,
        'running',
        String(vm.power_state).toLowerCase(),
      ]);
    const vdi = this.rec('VDI', vbd.VDI);
    const sr = this.rec('SR', vdi.SR);
    const device = `sm/backend/${sr.uuid}/${vdi.uuid}`;
    const link = join(this.devDir, device);
    mkdirSync(dirname(link), { recursive: true });
    rmSync(link, { force: true });
    symlinkSync(this.image(sr.uuid as string, vdi.uuid as string), link);
    this.db.mod('VBD', vbdRef, { currently_attached: true, device });
  }

  /**
   * VBD.unplug; on the control domain VBD.unplug_force is this same call (xapi_vbd.ml
   * `unplug_force`). As xapi, `device` is left as it was; only currently_attached changes.
   */
  unplug(vbdRef: string): void {
    const vbd = this.rec('VBD', vbdRef);
    if (!vbd.currently_attached) throw new Failure('DEVICE_ALREADY_DETACHED', [vbdRef]);
    const injected = this.faults.unplugFailure(vbdRef);
    if (injected) throw injected;
    if (vbd.device) rmSync(join(this.devDir, vbd.device as string), { force: true });
    this.db.mod('VBD', vbdRef, { currently_attached: false });
  }

  /** VBD.create with the checks of xapi_vbd.ml `create`. */
  createVbd(spec: Rec): string {
    const vm = this.rec('VM', spec.VM);
    const empty = Boolean(spec.empty);
    const type = String(spec.type ?? 'Disk');
    const mode = String(spec.mode ?? 'RW');
    if (!['Disk', 'CD', 'Floppy'].includes(type)) throw new Failure('FIELD_TYPE_ERROR', ['type']);
    if (!['RO', 'RW'].includes(mode)) throw new Failure('FIELD_TYPE_ERROR', ['mode']);
    const vdiRef = empty ? NULL : (spec.VDI as string);
    const vdi = empty ? undefined : this.rec('VDI', vdiRef);
    if (vdi && !VBD_VDI_TYPES.includes(String(vdi.type)))
      throw new Failure('VDI_INCOMPATIBLE_TYPE', [vdiRef, String(vdi.type)]);
    if (type === 'CD' && mode !== 'RO') throw new Failure('VBD_CDS_MUST_BE_READONLY', []);
    if (type !== 'CD' && empty) throw new Failure('VBD_NOT_REMOVABLE_MEDIA', ['in constructor']);
    if (vdi && mode === 'RW' && vdi.read_only) throw new Failure('VDI_READONLY', [vdiRef]);
    const ops = Object.entries((vm.current_operations as Record<string, string>) ?? {});
    const migrating = ops.find(([, op]) => op === 'migrate_send' || op === 'pool_migrate');
    if (migrating)
      throw new Failure('OTHER_OPERATION_IN_PROGRESS', [
        'VM',
        spec.VM as string,
        migrating[1],
        migrating[0],
      ]);
    const userdevice = chooseUserdevice(
      String(spec.userdevice ?? 'autodetect'),
      (vm.VBDs as string[]).map((v) => String(this.db.get('VBD', v)?.userdevice ?? '')),
    );
    const ref = this.db.add(
      'VBD',
      vbdRecord({
        uuid: randomUUID(),
        vm: spec.VM as string,
        vdi: vdiRef,
        userdevice,
        type: type === 'CD' ? 'CD' : 'Disk',
        bootable: Boolean(spec.bootable),
        empty,
        mode,
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
    // xapi_vbd_helpers.ml `destroy`: force the user to unplug first.
    if (vbd.currently_attached)
      throw new Failure('OPERATION_NOT_ALLOWED', [
        `VBD '${vbd.uuid}' still attached to '${this.db.get('VM', vbd.VM as string)?.uuid ?? ''}'`,
      ]);
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
