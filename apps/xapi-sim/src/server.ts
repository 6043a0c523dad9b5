import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { open as openFile, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  decodeMethodCall,
  decodeValue,
  encodeMethodResponse,
  encodeValue,
  type XmlRpcValue,
} from '@xsmeta/xapi';
import { dumpDb, parseDbDump } from './dbxml.js';
import { Db, NULL, newRef, type Rec } from './model.js';
import { Prng } from './prng.js';
import {
  backupVdiUuid,
  networkRecord,
  seedHostAndPool,
  seedPool,
  srRecord,
  vbdRecord,
  vdiRecord,
  vifRecord,
  XAPI_MAJOR,
  XAPI_MINOR,
} from './seed.js';
import { tarOne, untar } from './tar.js';

/** An XAPI failure: code and parameters, as ErrorDescription carries them. */
export class Failure extends Error {
  constructor(
    readonly code: string,
    readonly params: string[] = [],
  ) {
    super(`${code} ${params.join(' ')}`);
  }
}

/** Fault knobs (documented in the README). */
export interface FaultOptions {
  /** Delay before answering every RPC call and handler, ms. */
  latencyMs?: number;
  /** Fail calls whose method (or handler path) matches: after `after` matching calls pass, `times` fail. */
  fail?: { match: string; code: string; params?: string[]; after?: number; times?: number }[];
  /** Destroy the socket of matching requests instead of answering. */
  drop?: { match: string; after?: number; times?: number }[];
}

export interface FaultControl {
  set(f: FaultOptions): void;
  clear(): void;
  readonly current: FaultOptions;
}

export interface SimulatorOptions {
  stateDir: string;
  port?: number;
  vms?: number;
  srs?: number;
  seed?: number;
  password?: string;
  freshPool?: boolean;
  faults?: FaultOptions;
  log?: (line: string) => void;
}

export interface Simulator {
  url: string;
  port: number;
  stateDir: string;
  env: Record<string, string>;
  faults: FaultControl;
  close(): Promise<void>;
}

const USERNAME = 'root';

/** xapi's date format: `20240101T12:00:00Z`. */
const xapiDate = (d = new Date()) =>
  `${d.toISOString().slice(0, 10).replace(/-/g, '')}T${d.toISOString().slice(11, 19)}Z`;

interface Counter {
  seen: number;
  fired: number;
}

function matches(pattern: string, name: string): boolean {
  return pattern === name || (pattern.endsWith('*') && name.startsWith(pattern.slice(0, -1)));
}

class Faults implements FaultControl {
  current: FaultOptions;
  private counters = new Map<object, Counter>();
  constructor(f: FaultOptions = {}) {
    this.current = f;
  }
  set(f: FaultOptions): void {
    this.current = f;
    this.counters.clear();
  }
  clear(): void {
    this.set({});
  }
  private hit(rule: { match: string; after?: number; times?: number }, name: string): boolean {
    if (!matches(rule.match, name)) return false;
    const c = this.counters.get(rule) ?? { seen: 0, fired: 0 };
    this.counters.set(rule, c);
    c.seen++;
    if (c.seen <= (rule.after ?? 0)) return false;
    if (c.fired >= (rule.times ?? Number.POSITIVE_INFINITY)) return false;
    c.fired++;
    return true;
  }
  failure(name: string): Failure | null {
    for (const r of this.current.fail ?? [])
      if (this.hit(r, name)) return new Failure(r.code, r.params ?? []);
    return null;
  }
  drop(name: string): boolean {
    return (this.current.drop ?? []).some((r) => this.hit(r, name));
  }
}

/** Simulated pool: state, RPC methods and HTTP handlers. */
class Pool {
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

  // ---- metadata export / import (ocaml/xapi/export.ml, import.ml)
  exportMetadata(vmRef: string): Uint8Array {
    const vm = this.rec('VM', vmRef);
    const objs: { cls: string; ref: string }[] = [{ cls: 'VM', ref: vmRef }];
    const add = (cls: string, ref: unknown) => {
      if (
        typeof ref === 'string' &&
        ref !== NULL &&
        this.db.get(cls, ref) &&
        !objs.some((o) => o.ref === ref)
      )
        objs.push({ cls, ref });
    };
    for (const vbd of vm.VBDs as string[]) {
      add('VBD', vbd);
      const vdiRef = this.db.get('VBD', vbd)?.VDI;
      add('VDI', vdiRef);
      if (typeof vdiRef === 'string') add('SR', this.db.get('VDI', vdiRef)?.SR);
    }
    for (const vif of vm.VIFs as string[]) {
      add('VIF', vif);
      add('network', this.db.get('VIF', vif)?.network);
    }
    const ids = new Map(objs.map((o, i) => [o.ref, `Ref:${i}`]));
    const rewrite = (v: unknown): XmlRpcValue => {
      if (typeof v === 'string') return v.startsWith('OpaqueRef:') ? (ids.get(v) ?? NULL) : v;
      if (Array.isArray(v)) return v.map(rewrite);
      if (v && typeof v === 'object')
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rewrite(x)]));
      return v as XmlRpcValue;
    };
    const [, host] = [...this.db.table('host').entries()][0]!;
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
        snapshot: rewrite(this.db.get(o.cls, o.ref)),
      })),
    };
    return tarOne(
      'ova.xml',
      new TextEncoder().encode(`<?xml version="1.0" encoding="UTF-8"?>${encodeValue(ova)}`),
    );
  }

  importMetadata(body: Uint8Array, o: { force: boolean; dryRun: boolean }): string[] {
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
    const existing = this.db.byUuid('VM', vm.uuid as string);
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
      for (const [ref, other] of this.db.table('VM')) {
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
      const sr = srObj ? this.db.byUuid('SR', srObj.snapshot.uuid as string) : undefined;
      const vdi = this.db.byUuid('VDI', vdiObj.snapshot.uuid as string);
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
    if (existing) this.destroyVm(existing[0]);
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
    this.db.add('VM', fresh, vmRef);
    for (const d of disks) {
      this.createVbd({
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
      let netRef = [...this.db.table('network').entries()].find(
        ([, n]) =>
          netObj && (n.uuid === netObj.snapshot.uuid || n.bridge === netObj.snapshot.bridge),
      )?.[0];
      if (!netRef)
        netRef = this.db.add(
          'network',
          networkRecord({
            uuid: String(netObj?.snapshot.uuid ?? randomUUID()),
            name: String(netObj?.snapshot.name_label ?? 'imported network'),
            bridge: String(netObj?.snapshot.bridge ?? 'xapi0'),
          }),
        );
      const vif = this.db.add(
        'VIF',
        vifRecord({
          uuid: x.snapshot.uuid as string,
          vm: vmRef,
          network: netRef,
          device: String(x.snapshot.device),
          mac: String(x.snapshot.MAC),
        }),
      );
      this.db.mod('VM', vmRef, { VIFs: [...(this.db.get('VM', vmRef)!.VIFs as string[]), vif] });
      const net = this.db.get('network', netRef)!;
      this.db.mod('network', netRef, { VIFs: [...(net.VIFs as string[]), vif] });
    }
    return [vmRef];
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

  restoreDb(xml: string, dryRun: boolean): void {
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
}

// ------------------------------------------------------------------------------------------

const CLASSES = [
  'pool',
  'host',
  'VM',
  'VBD',
  'VIF',
  'VDI',
  'SR',
  'network',
  'task',
  'PBD',
  'VM_metrics',
];

type Handler = (pool: Pool, args: XmlRpcValue[]) => XmlRpcValue | Promise<XmlRpcValue>;

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Failure('FIELD_TYPE_ERROR', [what]);
  return v;
}

function methods(): Map<string, Handler> {
  const m = new Map<string, Handler>();
  for (const cls of CLASSES) {
    m.set(`${cls}.get_all_records`, (p) => Object.fromEntries(p.db.table(cls)) as XmlRpcValue);
    m.set(`${cls}.get_all`, (p) => [...p.db.table(cls).keys()]);
    m.set(`${cls}.get_record`, (p, [ref]) => p.rec(cls, ref) as XmlRpcValue);
    m.set(`${cls}.get_uuid`, (p, [ref]) => p.rec(cls, ref).uuid as string);
    m.set(`${cls}.get_by_uuid`, (p, [uuid]) => {
      const hit = p.db.byUuid(cls, str(uuid, 'uuid'));
      if (!hit) throw new Failure('UUID_INVALID', [cls, String(uuid)]);
      return hit[0];
    });
    m.set(`${cls}.get_by_name_label`, (p, [name]) =>
      [...p.db.table(cls)].filter(([, r]) => r.name_label === name).map(([ref]) => ref),
    );
    m.set(`${cls}.set_name_label`, (p, [ref, v]) => {
      p.rec(cls, ref);
      p.db.mod(cls, ref as string, { name_label: str(v, 'name_label') });
      return '';
    });
    m.set(`${cls}.set_name_description`, (p, [ref, v]) => {
      p.rec(cls, ref);
      p.db.mod(cls, ref as string, { name_description: str(v, 'name_description') });
      return '';
    });
    m.set(`${cls}.add_to_other_config`, (p, [ref, k, v]) => {
      const r = p.rec(cls, ref);
      p.db.mod(cls, ref as string, {
        other_config: {
          ...(r.other_config as Record<string, string>),
          [str(k, 'key')]: str(v, 'value'),
        },
      });
      return '';
    });
    m.set(`${cls}.remove_from_other_config`, (p, [ref, k]) => {
      const r = p.rec(cls, ref);
      const oc = { ...(r.other_config as Record<string, string>) };
      delete oc[str(k, 'key')];
      p.db.mod(cls, ref as string, { other_config: oc });
      return '';
    });
  }
  m.set('VDI.create', (p, [spec]) => p.createVdi(spec as Rec));
  m.set('VDI.destroy', (p, [ref]) => {
    p.destroyVdi(str(ref, 'vdi'));
    return '';
  });
  m.set('VBD.create', (p, [spec]) => p.createVbd(spec as Rec));
  m.set('VBD.plug', (p, [ref]) => {
    p.plug(str(ref, 'vbd'));
    return '';
  });
  m.set('VBD.unplug', (p, [ref]) => {
    p.unplug(str(ref, 'vbd'));
    return '';
  });
  // The device is gone either way here (a file SR has no backend to wait for).
  m.set('VBD.unplug_force', (p, [ref]) => {
    p.unplug(str(ref, 'vbd'));
    return '';
  });
  m.set('VBD.destroy', (p, [ref]) => {
    p.destroyVbd(str(ref, 'vbd'));
    return '';
  });
  m.set('SR.scan', (p, [ref]) => {
    p.scanSr(str(ref, 'sr'));
    return '';
  });
  m.set('VM.destroy', (p, [ref]) => {
    p.destroyVm(str(ref, 'vm'));
    return '';
  });
  m.set('pool.set_default_SR', (p, [ref, sr]) => {
    p.rec('SR', sr);
    p.db.mod('pool', str(ref, 'pool'), { default_SR: sr as string });
    return '';
  });
  m.set('task.create', (p, [label, desc]) => p.createTask(str(label, 'label'), String(desc ?? '')));
  m.set('task.destroy', (p, [ref]) => {
    p.rec('task', ref);
    p.db.del('task', ref as string);
    return '';
  });
  m.set('task.cancel', (p, [ref]) => {
    const t = p.rec('task', ref);
    if (t.status === 'pending')
      p.db.mod('task', ref as string, {
        status: 'cancelled',
        error_info: ['TASK_CANCELLED', ref as string],
      });
    return '';
  });
  for (const f of ['status', 'result', 'progress', 'error_info'])
    m.set(`task.get_${f}`, (p, [ref]) => p.rec('task', ref)[f] as XmlRpcValue);
  m.set('event.from', async (p, [classes, token, timeout]) => {
    const r = await p.db.eventsFrom(
      (classes as string[]) ?? [],
      String(token ?? ''),
      Math.min(60, Number(timeout ?? 0)) * 1000,
    );
    return { events: r.events as unknown as XmlRpcValue, valid_ref_counts: {}, token: r.token };
  });
  m.set('event.inject', (p, [cls, ref]) => {
    const c = CLASSES.find((x) => x.toLowerCase() === String(cls).toLowerCase()) ?? String(cls);
    const r = p.rec(c, ref);
    p.db.mod(c, ref as string, { ...r });
    return '';
  });
  m.set(
    'host.get_software_version',
    (p, [ref]) => p.rec('host', ref).software_version as XmlRpcValue,
  );
  return m;
}

const METHODS = methods();
const NO_SESSION = new Set([
  'session.login_with_password',
  'system.listMethods',
  'session.slave_local_login_with_password',
]);

async function dispatch(pool: Pool, method: string, params: XmlRpcValue[]): Promise<XmlRpcValue> {
  if (method === 'system.listMethods')
    return [
      ...METHODS.keys(),
      'session.login_with_password',
      'session.logout',
      // As xapi, Async variants only for calls that act, not for field getters.
      ...[...METHODS.keys()].filter((k) => !/\.get_/.test(k)).map((k) => `Async.${k}`),
    ];
  if (method === 'session.login_with_password')
    return pool.login(String(params[0] ?? ''), String(params[1] ?? ''));
  pool.checkSession(params[0]);
  const args = params.slice(1);
  if (method === 'session.logout') {
    pool.logout(params[0] as string);
    return '';
  }
  if (method === 'session.get_this_host') return pool.pool()[1].master as string;
  if (method.startsWith('Async.')) {
    const inner = method.slice(6);
    const h = METHODS.get(inner);
    if (!h) throw new Failure('MESSAGE_METHOD_UNKNOWN', [method]);
    const task = pool.createTask(`Async.${inner}`);
    setImmediate(async () => {
      try {
        pool.finishTask(task, { result: await h(pool, args) });
      } catch (e) {
        pool.finishTask(task, {
          error: e instanceof Failure ? e : new Failure('INTERNAL_ERROR', [String(e)]),
        });
      }
    });
    return task;
  }
  const h = METHODS.get(method);
  if (h) return h(pool, args);
  const get = /^([A-Za-z_]+)\.get_([A-Za-z_]+)$/.exec(method);
  if (get && CLASSES.includes(get[1]!)) {
    const r = pool.rec(get[1]!, args[0]);
    if (get[2]! in r) return r[get[2]!] as XmlRpcValue;
  }
  if (NO_SESSION.has(method)) return '';
  throw new Failure('MESSAGE_METHOD_UNKNOWN', [method]);
}

function readBody(req: http.IncomingMessage, limit = 512 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        reject(new Failure('REQUEST_TOO_LARGE', []));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sessionOf(req: http.IncomingMessage, url: URL): string {
  const q = url.searchParams.get('session_id');
  if (q) return q;
  const cookie = /session_id=([^;]+)/.exec(req.headers.cookie ?? '');
  if (cookie) return decodeURIComponent(cookie[1]!);
  return '';
}

/** Starts a simulated pool on 127.0.0.1; see the README. */
export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const dir = opts.stateDir;
  mkdirSync(join(dir, 'sr'), { recursive: true });
  mkdirSync(join(dir, 'dev'), { recursive: true });
  const password = opts.password ?? 'xsmeta';
  const statePath = join(dir, 'pool.json');
  let db: Db;
  if (existsSync(statePath) && !opts.freshPool) {
    db = Db.fromJSON(
      (JSON.parse(readFileSync(statePath, 'utf8')) as { db: Record<string, Record<string, Rec>> })
        .db,
    );
  } else if (existsSync(statePath) || (opts.freshPool && readdirSync(join(dir, 'sr')).length > 0)) {
    // --fresh-pool: new hardware, same storage re-attached. SRs come back with their uuids,
    // their VDIs are found again by SR.scan; VMs, networks, the database are gone.
    db = new Db();
    const r = new Prng((opts.seed ?? 1) + 7919 + Date.now());
    const srs = readdirSync(join(dir, 'sr'))
      .filter((d) => /^[0-9a-f-]{36}$/.test(d))
      .sort();
    const refs = srs.map((uuid, i) => db.add('SR', srsRecord(uuid, i)));
    seedHostAndPool(db, r, refs[0] ?? NULL);
    for (const [i, name] of [
      'Pool-wide network associated with eth0',
      'Pool-wide network associated with eth1',
    ].entries())
      db.add('network', networkRecord({ uuid: r.uuid(), name, bridge: `xenbr${i}` }));
    const pool = new Pool(dir, password, db);
    for (const ref of refs) pool.scanSr(ref);
    for (const f of readdirSync(join(dir, 'dev'))) unlinkSync(join(dir, 'dev', f));
  } else {
    db = new Db();
    const { images } = seedPool(db, {
      vms: opts.vms ?? 20,
      srs: opts.srs ?? 2,
      seed: opts.seed ?? 1,
    });
    for (const img of images) {
      mkdirSync(join(dir, 'sr', img.sr), { recursive: true });
      const p = join(dir, 'sr', img.sr, `${img.vdi}.img`);
      writeFileSync(p, '');
      truncateSync(p, img.size);
    }
  }
  const pool = new Pool(dir, password, db);
  pool.save();
  const faults = new Faults(opts.faults);
  const log = opts.log ?? (() => {});
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (faults.current.latencyMs)
        await new Promise((r) => setTimeout(r, faults.current.latencyMs));
      if (
        req.method === 'POST' &&
        (url.pathname === '/jsonrpc' ||
          url.pathname === '/' ||
          url.pathname === '/RPC2' ||
          url.pathname === '/xmlrpc')
      ) {
        const body = (await readBody(req, 64 * 1024 * 1024)).toString('utf8');
        const json = url.pathname === '/jsonrpc';
        let method = '';
        let params: XmlRpcValue[] = [];
        let id: unknown = null;
        let v1 = false;
        try {
          if (json) {
            const j = JSON.parse(body) as {
              method?: string;
              params?: XmlRpcValue[];
              id?: unknown;
              jsonrpc?: string;
            };
            method = String(j.method ?? '');
            params = j.params ?? [];
            id = j.id ?? null;
            v1 = j.jsonrpc !== '2.0';
          } else ({ method, params } = decodeMethodCall(body));
        } catch {
          res.writeHead(400).end('bad request');
          return;
        }
        if (faults.drop(method)) {
          req.socket.destroy();
          return;
        }
        let value: XmlRpcValue | undefined;
        let failure: Failure | undefined;
        try {
          const injected = faults.failure(method);
          if (injected) throw injected;
          value = await dispatch(pool, method, params);
        } catch (e) {
          failure =
            e instanceof Failure
              ? e
              : new Failure('INTERNAL_ERROR', [String((e as Error).message ?? e)]);
        }
        pool.scheduleSave();
        log(`${method} ${failure ? `-> ${failure.code}` : ''}`);
        if (json) {
          const reply = failure
            ? v1
              ? { result: null, error: [failure.code, ...failure.params], id }
              : {
                  jsonrpc: '2.0',
                  error: { code: 1, message: failure.code, data: failure.params },
                  id,
                }
            : v1
              ? { result: value, error: null, id }
              : { jsonrpc: '2.0', result: value, id };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
        } else {
          const reply: XmlRpcValue = failure
            ? { Status: 'Failure', ErrorDescription: [failure.code, ...failure.params] }
            : { Status: 'Success', Value: value! };
          res.writeHead(200, { 'content-type': 'text/xml' }).end(encodeMethodResponse(reply));
        }
        return;
      }
      // HTTP handlers
      const name = url.pathname;
      if (faults.drop(name)) {
        req.socket.destroy();
        return;
      }
      let session = sessionOf(req, url);
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      if (!session && basic) {
        const [u, pw] = Buffer.from(basic[1]!, 'base64').toString().split(':');
        session = pool.login(u ?? '', pw ?? '');
      }
      pool.checkSession(session);
      const taskId = url.searchParams.get('task_id') ?? '';
      const task = taskId && pool.db.get('task', taskId) ? taskId : pool.createTask(`HTTP ${name}`);
      const injected = faults.failure(name);
      const flag = (k: string) => url.searchParams.get(k) === 'true';
      const finish = (outcome: { result: XmlRpcValue } | { error: Failure }) => {
        pool.finishTask(task, outcome);
        pool.scheduleSave();
      };
      if (injected) {
        await readBody(req).catch(() => {});
        finish({ error: injected });
        res.writeHead(500, { 'task-id': task }).end(injected.code);
        return;
      }
      if (req.method === 'GET' && name === '/export_metadata') {
        const uuid = url.searchParams.get('uuid');
        const ref = uuid ? pool.db.byUuid('VM', uuid)?.[0] : url.searchParams.get('ref');
        if (!ref || !pool.db.get('VM', ref))
          throw new Failure(uuid ? 'UUID_INVALID' : 'HANDLE_INVALID', ['VM', uuid ?? String(ref)]);
        const tar = pool.exportMetadata(ref);
        finish({ result: '' });
        res
          .writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': tar.length,
            'task-id': task,
          })
          .end(tar);
        return;
      }
      if (req.method === 'GET' && name === '/pool/xmldbdump') {
        const xml = Buffer.from(dumpDb(pool.db, 1));
        finish({ result: '' });
        res
          .writeHead(200, {
            'content-type': 'text/xml',
            'content-length': xml.length,
            'task-id': task,
          })
          .end(xml);
        return;
      }
      if (
        req.method === 'PUT' &&
        (name === '/import_metadata' || name === '/pool/xmldbdump' || name === '/import_raw_vdi')
      ) {
        const body = await readBody(req);
        res.writeHead(200, { 'task-id': task }).end();
        setImmediate(async () => {
          try {
            if (name === '/import_metadata') {
              const refs = pool.importMetadata(new Uint8Array(body), {
                force: flag('force'),
                dryRun: flag('dry_run'),
              });
              finish({ result: refs });
            } else if (name === '/pool/xmldbdump') {
              pool.restoreDb(body.toString('utf8'), flag('dry_run'));
              finish({ result: '' });
            } else {
              const vdi = pool.rec('VDI', url.searchParams.get('vdi'));
              const sr = pool.rec('SR', vdi.SR);
              const fh = await openFile(pool.image(sr.uuid as string, vdi.uuid as string), 'r+');
              await fh.write(body, 0, body.length, 0);
              await fh.close();
              finish({ result: '' });
            }
          } catch (e) {
            finish({
              error:
                e instanceof Failure
                  ? e
                  : new Failure('INTERNAL_ERROR', [String((e as Error).message)]),
            });
          }
        });
        return;
      }
      if (req.method === 'GET' && name === '/export_raw_vdi') {
        const vdi = pool.rec('VDI', url.searchParams.get('vdi'));
        const sr = pool.rec('SR', vdi.SR);
        const data = await readFile(pool.image(sr.uuid as string, vdi.uuid as string));
        finish({ result: '' });
        res
          .writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': data.length,
            'task-id': task,
          })
          .end(data);
        return;
      }
      finish({ error: new Failure('HANDLER_NOT_FOUND', [name]) });
      res.writeHead(404).end('not found');
    } catch (e) {
      const f =
        e instanceof Failure ? e : new Failure('INTERNAL_ERROR', [String((e as Error).message)]);
      // As xapi does, a failed handler completes the caller's task with the failure.
      const failedTask = url.searchParams.get('task_id');
      if (failedTask && pool.db.get('task', failedTask)?.status === 'pending') {
        pool.finishTask(failedTask, { error: f });
        pool.scheduleSave();
      }
      if (!res.headersSent)
        res
          .writeHead(
            f.code === 'SESSION_INVALID' || f.code === 'SESSION_AUTHENTICATION_FAILED' ? 401 : 500,
          )
          .end(f.code);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const dom0 = pool.db.get('VM', pool.dom0())!;
  const host = [...pool.db.table('host').values()][0]!;
  writeFileSync(
    join(dir, 'inventory'),
    `INSTALLATION_UUID='${host.uuid}'\nCONTROL_DOMAIN_UUID='${dom0.uuid}'\nPRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\n`,
  );
  const env = {
    XSMETA_URL: url,
    XSMETA_USERNAME: USERNAME,
    XSMETA_PASSWORD: password,
    XSMETA_INVENTORY: join(dir, 'inventory'),
    XSMETA_DEV_DIR: join(dir, 'dev'),
  };
  writeFileSync(
    join(dir, 'env'),
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  return {
    url,
    port,
    stateDir: dir,
    env,
    faults,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      pool.flush();
    },
  };
}

function srsRecord(uuid: string, i: number): Rec {
  return srRecord({ uuid, name: `Re-attached SR ${i + 1}`, desc: '' });
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
