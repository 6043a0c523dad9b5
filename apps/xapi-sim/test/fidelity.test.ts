// Over 400 lines on purpose: one test per row of the README's fidelity table, kept in the
// table's order so that a row and its proof are found together.
// The simulator does what xapi does, point by point, each against the xen-api source named in
// the README's table. Each of these failed against the simulator before it followed xapi.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeValue,
  encodeMethodCall,
  encodeValue,
  firstTarMember,
  tarOne,
  XapiClient,
  type XapiError,
  type XmlRpcValue,
} from '@xsmeta/xapi';
import { afterAll, describe, expect, it } from 'vitest';
import { rejection } from '../../../test-support/reject.js';
import { type Simulator, startSimulator } from '../src/index.js';

const dirs: string[] = [];
const sims: Simulator[] = [];
afterAll(async () => {
  for (const s of sims) await s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function sim(opts: Partial<Parameters<typeof startSimulator>[0]> = {}): Promise<Simulator> {
  const stateDir = await mkdtemp(join(tmpdir(), 'xapi-fid-'));
  dirs.push(stateDir);
  const s = await startSimulator({ vms: 6, srs: 2, seed: 7, ...opts, stateDir });
  sims.push(s);
  return s;
}
const connect = (s: Simulator, transport: 'jsonrpc' | 'xmlrpc' = 'jsonrpc') =>
  XapiClient.connect({ url: s.url, username: 'root', password: 'xsmeta', transport });

type R = Record<string, unknown>;
interface Obj {
  class: string;
  id: string;
  snapshot: R;
}

/** A raw HTTP exchange (TCP or the Unix socket): status, headers, body. */
function raw(
  s: Simulator,
  o: { method?: string; path: string; body?: string; socket?: boolean; auth?: boolean },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        ...(o.socket ? { socketPath: s.socketPath } : { host: '127.0.0.1', port: s.port }),
        method: o.method ?? 'GET',
        path: o.path,
        headers: o.auth === false ? {} : { authorization: `Basic ${btoa('root:xsmeta')}` },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('aborted', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end(o.body);
  });
}

const rpcJson = (s: Simulator, method: string, params: unknown[], socket = false) =>
  raw(s, {
    method: 'POST',
    path: '/jsonrpc',
    socket,
    auth: false,
    body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 7 }),
  }).then((r) => JSON.parse(r.body.toString()) as R);

function ova(tar: Uint8Array): { version: R; objects: Obj[] } {
  const first = firstTarMember(tar)!;
  expect(first.name).toBe('ova.xml');
  return decodeValue(new TextDecoder().decode(first.data)) as unknown as {
    version: R;
    objects: Obj[];
  };
}
function reTar(tar: Uint8Array, edit: (objects: Obj[]) => void): Uint8Array {
  const o = ova(tar);
  edit(o.objects);
  return tarOne('ova.xml', new TextEncoder().encode(encodeValue(o as unknown as XmlRpcValue)));
}
async function code(p: Promise<unknown>): Promise<{ code: string; params: string[] }> {
  const x = await rejection<XapiError>(p);
  return { code: x.code, params: x.params };
}
async function guests(c: XapiClient): Promise<[string, R][]> {
  return [...(await c.getAllRecords<R>('VM'))].filter(
    ([, v]) => !v.is_a_template && !v.is_control_domain && !v.is_a_snapshot,
  );
}

describe('metadata export (export.ml metadata_handler, make_*)', () => {
  it('puts snapshots in by default, leaves them out with export_snapshots=false', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref, vm] = (await guests(c)).find(([, v]) => (v.snapshots as string[]).length > 0)!;
    const withSnaps = ova(await c.exportMetadata({ ref }));
    const vms = withSnaps.objects.filter((o) => o.class === 'VM');
    expect(vms).toHaveLength(2);
    expect(vms.find((o) => o.snapshot.is_a_snapshot)!.snapshot.snapshot_of).toBe(
      vms.find((o) => o.snapshot.uuid === vm.uuid)!.id,
    );
    const without = ova(await c.exportMetadata({ ref }, { exportSnapshots: false }));
    const only = without.objects.filter((o) => o.class === 'VM');
    expect(only.map((o) => o.snapshot.uuid)).toEqual([vm.uuid]);
    expect(only[0]!.snapshot.snapshots).toEqual([]);
  });

  it('keeps only exported members in SR.VDIs and network.VIFs; empties PBDs, PIFs and operations', async () => {
    const s = await sim({ vms: 40 });
    const c = await connect(s);
    const [ref] = (await guests(c))[0]!;
    const { objects } = ova(await c.exportMetadata({ ref }, { exportSnapshots: false }));
    const ids = new Set(objects.map((o) => o.id));
    const vdis = objects.filter((o) => o.class === 'VDI');
    for (const sr of objects.filter((o) => o.class === 'SR')) {
      expect(sr.snapshot.PBDs).toEqual([]);
      const members = sr.snapshot.VDIs as string[];
      expect(members.every((m) => ids.has(m))).toBe(true);
      expect(members.length).toBe(vdis.filter((v) => v.snapshot.SR === sr.id).length);
    }
    for (const n of objects.filter((o) => o.class === 'network')) {
      expect(n.snapshot.PIFs).toEqual([]);
      expect((n.snapshot.VIFs as string[]).every((m) => ids.has(m))).toBe(true);
    }
    for (const o of objects) {
      if ('allowed_operations' in o.snapshot) expect(o.snapshot.allowed_operations).toEqual([]);
      if ('current_operations' in o.snapshot) expect(o.snapshot.current_operations).toEqual({});
    }
    // One VM's export does not grow with the pool.
    const big = await sim({ vms: 400 });
    const cb = await connect(big);
    const [refBig] = (await guests(cb))[0]!;
    const a = (await c.exportMetadata({ ref }, { exportSnapshots: false })).length;
    const b = (await cb.exportMetadata({ ref: refBig }, { exportSnapshots: false })).length;
    expect(b).toBeLessThan(a * 1.5);
  });

  it('all=true exports every VM but default templates in one ova.xml; include_dom0=false drops dom0', async () => {
    const s = await sim();
    const c = await connect(s);
    const all = [...(await c.getAllRecords<R>('VM')).values()];
    const wanted = all.filter(
      (v) =>
        !v.is_default_template &&
        !(v.is_a_template && (v.other_config as R).default_template === 'true'),
    );
    const r = await raw(s, { path: '/export_metadata?all=true' });
    expect(r.status).toBe(200);
    const o = ova(r.body);
    const uuids = o.objects.filter((x) => x.class === 'VM').map((x) => x.snapshot.uuid);
    expect(uuids.sort()).toEqual(wanted.map((v) => v.uuid).sort());
    const noDom0 = ova(
      (await raw(s, { path: '/export_metadata?all=true&include_dom0=false' })).body,
    );
    expect(noDom0.objects.some((x) => x.class === 'VM' && x.snapshot.is_control_domain)).toBe(
      false,
    );
    // The host comes in with dom0 (its resident_on), as make_host makes it.
    const host = o.objects.find((x) => x.class === 'host')!;
    expect(host.snapshot.PIFs).toEqual([]);
    expect(host.snapshot.software_version).toEqual({});
    const dom0 = o.objects.find((x) => x.class === 'VM' && x.snapshot.is_control_domain)!;
    expect(dom0.snapshot.resident_on).toBe(host.id);
    expect(host.snapshot.resident_VMs).toEqual([dom0.id]);
  });

  it('rewrites only reference fields, never a string that merely looks like a ref', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref] = (await guests(c))[0]!;
    await c.call('VM.add_to_other_config', ref, 'note', 'OpaqueRef:not-a-ref');
    const { objects } = ova(await c.exportMetadata({ ref }, { exportSnapshots: false }));
    const vm = objects.find((o) => o.class === 'VM')!;
    expect((vm.snapshot.other_config as R).note).toBe('OpaqueRef:not-a-ref');
    expect((vm.snapshot.VBDs as string[]).every((x) => x.startsWith('Ref:'))).toBe(true);
  });

  it('import refuses a tar whose first member is not ova.xml', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref] = (await guests(c))[0]!;
    const good = await c.exportMetadata({ ref }, { exportSnapshots: false });
    const other = tarOne('checksums.txt', new TextEncoder().encode('x'));
    const bad = new Uint8Array([...other.subarray(0, other.length - 1024), ...good]);
    expect(await code(c.importMetadata(bad, { dryRun: true }))).toEqual({
      code: 'IMPORT_ERROR_UNEXPECTED_FILE',
      params: ['ova.xml', 'checksums.txt'],
    });
  });

  it('locks each VM as lock_vm does: a busy VM is refused with OTHER_OPERATION_IN_PROGRESS', async () => {
    const s = await sim();
    const c = await connect(s);
    const [[ref, vm], [ref2]] = (await guests(c)) as [[string, R], [string, R]];
    s.faults.set({ busy: [{ vm: vm.uuid as string }] });
    const err = await code(c.exportMetadata({ ref }, { exportSnapshots: false }));
    expect(err.code).toBe('OTHER_OPERATION_IN_PROGRESS');
    expect(err.params.slice(0, 3)).toEqual(['VM', ref, 'clean_shutdown']);
    // all=true takes every lock, so one busy VM fails the whole export.
    expect((await raw(s, { path: '/export_metadata?all=true' })).status).toBe(500);
    // Another VM exports; the export leaves no operation behind.
    await c.exportMetadata({ ref: ref2! }, { exportSnapshots: false });
    expect(await c.call('VM.get_current_operations', ref2)).toEqual({});
    s.faults.clear();
    await c.exportMetadata({ ref }, { exportSnapshots: false });
  });
});

describe('metadata import (import.ml)', () => {
  it('skips a running VM with force; refuses it without; replaces a halted one with a newer version', async () => {
    const s = await sim();
    const c = await connect(s);
    const [[ref, vm], [ref2, vm2]] = (await guests(c)) as [[string, R], [string, R]];
    const tar = await c.exportMetadata({ ref }, { exportSnapshots: false });
    s.setPowerState(vm.uuid as string, 'Running');
    const before = (await c.getAllRecords('VM')).size;
    expect(await c.importMetadata(tar, { force: true })).toEqual([]);
    expect((await c.getAllRecords('VM')).size).toBe(before);
    expect(await c.call('VM.get_power_state', ref)).toBe('Running');
    expect(await code(c.importMetadata(tar, {}))).toEqual({
      code: 'VM_BAD_POWER_STATE',
      params: [ref, 'Halted', 'Running'],
    });
    // Halted, and the export's version is newer: replaced without force.
    const tar2 = await c.exportMetadata({ ref: ref2 }, { exportSnapshots: false });
    expect((await code(c.importMetadata(tar2, {}))).code).toBe('VM_TO_IMPORT_IS_NOT_NEWER_VERSION');
    const newer = reTar(tar2, (objs) => {
      objs.find((o) => o.class === 'VM')!.snapshot.version = '3';
    });
    const [replaced] = await c.importMetadata(newer, {});
    expect(replaced).not.toBe(ref2);
    expect(await c.call('VM.get_uuid', replaced)).toBe(vm2.uuid);
    expect((await code(c.call('VM.get_record', ref2))).code).toBe('HANDLE_INVALID');
  });

  it('two imports that both miss a network race as xapi: both create it, or one meets BRIDGE_NAME_EXISTS', async () => {
    const s = await sim();
    const c = await connect(s);
    const refs = (await guests(c)).slice(0, 4).map(([ref]) => ref);
    const tars = await Promise.all(
      refs.map((ref) => c.exportMetadata({ ref }, { exportSnapshots: false })),
    );
    for (const ref of refs) await c.call('VM.destroy', ref);
    const rename = (tar: Uint8Array, name: string, bridge: string) =>
      reTar(tar, (objs) => {
        for (const o of objs.filter((x) => x.class === 'network')) {
          o.snapshot.name_label = name;
          o.snapshot.bridge = bridge;
        }
      });
    const nets = async (name: string) =>
      [...(await c.getAllRecords<R>('network')).values()].filter((n) => n.name_label === name);
    // An empty bridge: Network.create picks a fresh one for each, so two networks.
    s.faults.set({ importBarrier: { count: 2, timeoutMs: 120_000 } });
    await Promise.all(
      [tars[0]!, tars[1]!].map((t) => c.importMetadata(rename(t, 'Racy net', ''), {})),
    );
    expect(await nets('Racy net')).toHaveLength(2);
    // The same bridge: the second Network.create is refused; that import fails, cleaned up.
    s.faults.set({ importBarrier: { count: 2, timeoutMs: 120_000 } });
    const results = await Promise.allSettled(
      [tars[2]!, tars[3]!].map((t) => c.importMetadata(rename(t, 'Racy bridge', 'xapi9'), {})),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as XapiError).code).toBe('BRIDGE_NAME_EXISTS');
    expect((failed.reason as XapiError).params).toEqual(['xapi9']);
    expect(await nets('Racy bridge')).toHaveLength(1);
  });

  it('matches disks by SR and location: VDI_LOCATION_MISSING, VDI_CONTENT_ID_MISSING, force, ISO ejected', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref, vm] = (await guests(c))[0]!;
    const tar = await c.exportMetadata({ ref }, { exportSnapshots: false });
    await c.call('VM.destroy', ref);
    const { objects } = ova(tar);
    const vdi = objects.find((o) => o.class === 'VDI')!;
    const srUuid = objects.find((o) => o.id === vdi.snapshot.SR)!.snapshot.uuid as string;
    const srRef = await c.call<string>('SR.get_by_uuid', srUuid);
    // Same uuid, other location: not found (xapi matches the location, not the uuid).
    const moved = reTar(tar, (objs) => {
      objs.find((o) => o.id === vdi.id)!.snapshot.location = 'elsewhere';
    });
    expect(await code(c.importMetadata(moved, { dryRun: true }))).toEqual({
      code: 'VDI_LOCATION_MISSING',
      params: [srRef, 'elsewhere'],
    });
    const noSr = reTar(tar, (objs) => {
      for (const o of objs.filter((x) => x.class === 'SR')) o.snapshot.uuid = crypto.randomUUID();
    });
    expect(await code(c.importMetadata(noSr, { dryRun: true }))).toEqual({
      code: 'VDI_CONTENT_ID_MISSING',
      params: [],
    });
    // force: the missing disk is left out, the VM comes in.
    const [forced] = await c.importMetadata(moved, { force: true });
    const disks = (await c.call<string[]>('VM.get_VBDs', forced)).length;
    expect(disks).toBe((vm.VBDs as string[]).length - 1);
    await c.call('VM.destroy', forced);
    // A CD whose ISO is nowhere is ejected, silently.
    const iso = reTar(tar, (objs) => {
      objs.find((o) => o.id === vdi.snapshot.SR)!.snapshot.content_type = 'iso';
      for (const o of objs.filter((x) => x.class === 'VBD' && x.snapshot.VDI === vdi.id)) {
        o.snapshot.type = 'CD';
        o.snapshot.mode = 'RO';
      }
    });
    const [withCd] = await c.importMetadata(iso, {});
    const vbds = await Promise.all(
      (await c.call<string[]>('VM.get_VBDs', withCd)).map((b) => c.call<R>('VBD.get_record', b)),
    );
    expect(vbds.filter((b) => b.type === 'CD' && b.empty).length).toBeGreaterThanOrEqual(2);
  });

  it('VDI.destroy takes its VBDs with it; the VM still exports', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref, vm] = (await guests(c))[0]!;
    const vbd = (vm.VBDs as string[])[0]!;
    const vdi = await c.call<string>('VBD.get_VDI', vbd);
    await c.call('VDI.destroy', vdi);
    expect(await c.call('VM.get_VBDs', ref)).not.toContain(vbd);
    expect((await code(c.call('VBD.get_record', vbd))).code).toBe('HANDLE_INVALID');
    const { objects } = ova(await c.exportMetadata({ ref }, { exportSnapshots: false }));
    expect(objects.filter((o) => o.class === 'VBD')).toHaveLength((vm.VBDs as string[]).length - 1);
  });

  it('a dry run returns no refs but those of default templates', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref] = (await guests(c))[0]!;
    const tar = await c.exportMetadata({ ref }, { exportSnapshots: false });
    expect(await c.importMetadata(tar, { dryRun: true, force: true })).toEqual([]);
    const [tplRef] = [...(await c.getAllRecords<R>('VM'))].find(([, v]) => v.is_default_template)!;
    const tpl = await c.exportMetadata({ ref: tplRef }, { exportSnapshots: false });
    expect(await c.importMetadata(tpl, { dryRun: true })).toEqual([tplRef]);
  });

  it('answers 200 with its task id before reading the archive, and ends only once its task is final', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref] = (await guests(c))[0]!;
    const tar = await c.exportMetadata({ ref }, { exportSnapshots: false });
    const task = await c.call<string>('task.create', 'import', '');
    const query = `session_id=${c.sessionRef}&task_id=${task}&restore=true&force=true&dry_run=true`;
    const req = http.request({
      host: '127.0.0.1',
      port: s.port,
      method: 'PUT',
      path: `/import_metadata?${query}`,
      headers: { 'content-length': tar.length },
    });
    const head = new Promise<http.IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    req.write(tar.subarray(0, 100));
    // the head comes while most of the archive is still unsent
    const res = await head;
    expect(res.statusCode).toBe(200);
    expect(res.headers['task-id']).toBe(task);
    expect(res.headers.connection).toBe('close');
    expect(await c.call('task.get_status', task)).toBe('pending');
    req.end(tar.subarray(100));
    for await (const _ of res) {
      // the body is empty; it ends when the handler returns
    }
    expect(await c.call('task.get_status', task)).toBe('success');
  });
});

describe('pool database dump (pool_db_backup.ml)', () => {
  it('streams with no Content-Length and Connection: close; the cut knob fails the task', async () => {
    const s = await sim();
    const c = await connect(s);
    const r = await raw(s, { path: '/pool/xmldbdump' });
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBeUndefined();
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(r.headers.connection).toBe('close');
    expect(r.body.toString().endsWith('</database>')).toBe(true);
    s.faults.set({ cut: [{ match: '/pool/xmldbdump', afterBytes: 10_000 }] });
    const task = await c.call<string>('task.create', 'dump', '');
    const cut = await raw(s, { path: `/pool/xmldbdump?task_id=${task}` });
    expect(cut.status).toBe(200);
    expect(cut.body.length).toBeLessThanOrEqual(10_000);
    expect(await c.call('task.get_status', task)).toBe('failure');
    expect(((await c.call<string[]>('task.get_error_info', task)) as string[])[0]).toBe(
      'INTERNAL_ERROR',
    );
  });
});

describe('dom0 disks (xapi_vbd.ml, system_domains.ml)', () => {
  it('plugs at sm/backend/<sr>/<vdi> under the device folder; unplug_force is unplug; a knob fails it', async () => {
    const s = await sim();
    const c = await connect(s);
    const vms = await c.getAllRecords<R>('VM');
    const dom0 = [...vms].find(([, v]) => v.is_control_domain)![0];
    const [srRef, sr] = [...(await c.getAllRecords<R>('SR'))][0]!;
    const vdi = await c.call<string>('VDI.create', {
      name_label: 'scratch',
      SR: srRef,
      virtual_size: String(1 << 20),
      type: 'user',
      read_only: false,
    });
    const vdiUuid = await c.call<string>('VDI.get_uuid', vdi);
    const vbd = await c.call<string>('VBD.create', {
      VM: dom0,
      VDI: vdi,
      userdevice: 'autodetect',
      mode: 'RW',
      type: 'Disk',
      empty: false,
    });
    await c.call('VBD.plug', vbd);
    const device = await c.call<string>('VBD.get_device', vbd);
    expect(device).toBe(`sm/backend/${sr.uuid}/${vdiUuid}`);
    const path = join(s.env.XSMETA_DEV_DIR!, device);
    expect(readlinkSync(path)).toContain(vdiUuid);
    expect(statSync(path).size).toBe(1 << 20);
    s.faults.set({ unplugFail: {} });
    for (const m of ['VBD.unplug', 'VBD.unplug_force'])
      expect(await code(c.call(m, vbd))).toEqual({
        code: 'DEVICE_DETACH_REJECTED',
        params: ['VBD', vbd, 'the device is busy (injected)'],
      });
    expect(await c.call('VBD.get_currently_attached', vbd)).toBe(true);
    // A failure injected into VBD.unplug hits unplug_force too: it is the same call on dom0.
    s.faults.set({ fail: [{ match: 'VBD.unplug', code: 'INTERNAL_ERROR', times: 1 }] });
    expect((await code(c.call('VBD.unplug_force', vbd))).code).toBe('INTERNAL_ERROR');
    s.faults.clear();
    await c.call('VBD.unplug_force', vbd);
    expect(await c.call('VBD.get_currently_attached', vbd)).toBe(false);
    expect(() => statSync(path)).toThrow();
    await c.call('VBD.destroy', vbd);
  });
});

describe('errors and protocol', () => {
  it('answers HOST_STILL_BOOTING in emergency mode as api_server.ml does', async () => {
    const s = await sim({ faults: { emergency: true } });
    const r = await raw(s, {
      method: 'POST',
      path: '/jsonrpc',
      auth: false,
      body: JSON.stringify({
        jsonrpc: '2.0',
        method: 'session.login_with_password',
        params: ['root', 'xsmeta'],
        id: 3,
      }),
    });
    expect(JSON.parse(r.body.toString())).toEqual({
      jsonrpc: '2.0',
      error: ['HOST_STILL_BOOTING'],
      id: 0,
    });
    const x = await raw(s, {
      method: 'POST',
      path: '/',
      auth: false,
      body: encodeMethodCall('session.login_with_password', ['root', 'xsmeta']),
    });
    expect(x.body.toString()).toContain('HOST_STILL_BOOTING');
  });

  it('sends ints as JSON numbers over JSON-RPC and as strings over XML-RPC', async () => {
    const s = await sim();
    const login = await rpcJson(s, 'session.login_with_password', ['root', 'xsmeta']);
    const session = login.result as string;
    const all = (await rpcJson(s, 'VM.get_all_records', [session])).result as Record<string, R>;
    const vm = Object.values(all).find((v) => !v.is_control_domain)!;
    expect(typeof vm.memory_static_max).toBe('number');
    expect(typeof vm.VCPUs_max).toBe('number');
    const [ref] = Object.keys(all);
    expect(typeof (await rpcJson(s, 'VM.get_memory_static_max', [session, ref])).result).toBe(
      'number',
    );
    const x = await raw(s, {
      method: 'POST',
      path: '/',
      auth: false,
      body: encodeMethodCall('VM.get_record', [session, ref!]),
    });
    expect(x.body.toString()).toMatch(
      /<name>memory_static_max<\/name><value>(<string>)?\d+(<\/string>)?<\/value>/,
    );
  });

  it('uses only error codes of api_errors.ml; unknown methods and wrong counts as xapi', async () => {
    // Every code the simulator's sources can raise exists in ocaml/xapi-consts/api_errors.ml.
    const REAL = new Set([
      'BRIDGE_NAME_EXISTS',
      'DEVICE_ALREADY_ATTACHED',
      'DEVICE_ALREADY_DETACHED',
      'DEVICE_ALREADY_EXISTS',
      'DEVICE_DETACH_REJECTED',
      'DUPLICATE_MAC_SEED',
      'FIELD_TYPE_ERROR',
      'HANDLE_INVALID',
      'HOST_STILL_BOOTING',
      'IMPORT_ERROR',
      'IMPORT_ERROR_ATTACHED_DISKS_NOT_FOUND',
      'IMPORT_ERROR_FAILED_TO_FIND_OBJECT',
      'IMPORT_ERROR_PREMATURE_EOF',
      'IMPORT_ERROR_UNEXPECTED_FILE',
      'IMPORT_INCOMPATIBLE_VERSION',
      'INTERNAL_ERROR',
      'INVALID_DEVICE',
      'MAP_DUPLICATE_KEY',
      'MESSAGE_METHOD_UNKNOWN',
      'MESSAGE_PARAMETER_COUNT_MISMATCH',
      'OPERATION_NOT_ALLOWED',
      'OTHER_OPERATION_IN_PROGRESS',
      'RESTORE_INCOMPATIBLE_VERSION',
      'SESSION_AUTHENTICATION_FAILED',
      'SESSION_INVALID',
      'TASK_CANCELLED',
      'UUID_INVALID',
      'VBD_CDS_MUST_BE_READONLY',
      'VBD_NOT_REMOVABLE_MEDIA',
      'VDI_CONTENT_ID_MISSING',
      'VDI_INCOMPATIBLE_TYPE',
      'VDI_IN_USE',
      'VDI_IO_ERROR',
      'VDI_LOCATION_MISSING',
      'VDI_MISSING',
      'VDI_READONLY',
      'VDI_TOO_LARGE',
      'VM_BAD_POWER_STATE',
      'VM_TO_IMPORT_IS_NOT_NEWER_VERSION',
    ]);
    const src = join(import.meta.dirname, '../src');
    const used = new Set<string>();
    for (const f of readdirSync(src))
      for (const m of readFileSync(join(src, f), 'utf8').matchAll(/'([A-Z][A-Z0-9_]{4,})'/g))
        if (/_/.test(m[1]!) && !m[1]!.startsWith('XSMETA_') && !m[1]!.startsWith('XAPI_'))
          used.add(m[1]!);
    expect([...used].filter((u) => !REAL.has(u))).toEqual([]);
    const s = await sim();
    const c = await connect(s);
    expect((await code(c.call('VBD.get_by_name_label', 'x'))).code).toBe('MESSAGE_METHOD_UNKNOWN');
    const [ref] = (await guests(c))[0]!;
    expect(await code(c.call('VM.get_record', ref, 'extra'))).toEqual({
      code: 'MESSAGE_PARAMETER_COUNT_MISMATCH',
      params: ['VM.get_record', '1', '2'],
    });
    const r = await raw(s, { path: '/no_such_handler' });
    expect(r.status).toBe(404);
  });

  it('checks VBD.create as xapi_vbd.ml does', async () => {
    const s = await sim();
    const c = await connect(s);
    const [ref, vm] = (await guests(c))[0]!;
    const [srRef] = [...(await c.getAllRecords<R>('SR'))][0]!;
    const ro = await c.call<string>('VDI.create', {
      name_label: 'ro',
      SR: srRef,
      virtual_size: '1048576',
      type: 'user',
      read_only: true,
    });
    const base = { VM: ref, VDI: ro, userdevice: '7', mode: 'RO', type: 'Disk', empty: false };
    expect(await code(c.call('VBD.create', { ...base, mode: 'RW' }))).toEqual({
      code: 'VDI_READONLY',
      params: [ro],
    });
    expect((await code(c.call('VBD.create', { ...base, type: 'CD', mode: 'RW' }))).code).toBe(
      'VBD_CDS_MUST_BE_READONLY',
    );
    expect(await code(c.call('VBD.create', { ...base, empty: true }))).toEqual({
      code: 'VBD_NOT_REMOVABLE_MEDIA',
      params: ['in constructor'],
    });
    expect(await code(c.call('VBD.create', { ...base, userdevice: 'floppy9' }))).toEqual({
      code: 'INVALID_DEVICE',
      params: ['floppy9'],
    });
    const used = await c.call<string>('VBD.get_userdevice', (vm.VBDs as string[])[0]);
    expect(await code(c.call('VBD.create', { ...base, userdevice: used }))).toEqual({
      code: 'DEVICE_ALREADY_EXISTS',
      params: [used],
    });
    await c.call('VBD.create', base);
  });
});

describe('the local socket (xapi_session.ml login_with_password)', () => {
  it('trusts a root login over the Unix socket whatever its password; DIR/env is 0600 export lines', async () => {
    const s = await sim();
    const tcp = await rpcJson(s, 'session.login_with_password', ['root', 'wrong']);
    expect((tcp.error as R).message).toBe('SESSION_AUTHENTICATION_FAILED');
    const local = await rpcJson(s, 'session.login_with_password', ['root', 'wrong'], true);
    expect(local.result).toMatch(/^OpaqueRef:/);
    const vms = await rpcJson(s, 'VM.get_all', [local.result], true);
    expect((vms.result as string[]).length).toBeGreaterThan(6);
    expect(s.socketPath).toBe(join(s.stateDir, 'xapi.sock'));
    const env = join(s.stateDir, 'env');
    expect(statSync(env).mode & 0o777).toBe(0o600);
    const lines = readFileSync(env, 'utf8').trim().split('\n');
    expect(lines.every((l) => /^export [A-Z_]+=\S+$/.test(l))).toBe(true);
    expect(lines).toContain(`export XSMETA_SOCKET=${s.socketPath}`);
  });
});

const built = existsSync(new URL('../dist/main.js', import.meta.url));

describe('the command line', () => {
  it.skipIf(!built)(
    'xapi-sim --socket PATH --faults JSON serves the socket, takes the new knobs, writes it in DIR/env (needs dist)',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'xapi-cli-'));
      dirs.push(dir);
      const socket = join(dir, 'other.sock');
      const child = spawn(
        process.execPath,
        [
          fileURLToPath(new URL('../bin/xapi-sim.js', import.meta.url)),
          '--state',
          join(dir, 'state'),
          '--vms',
          '2',
          '--socket',
          socket,
          '--faults',
          JSON.stringify({ emergency: true }),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      try {
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', (d: Buffer) => {
            if (d.toString().includes('XAPI simulator listening on')) resolve();
          });
          child.once('exit', (c) => reject(new Error(`exited ${c}`)));
        });
        const env = readFileSync(join(dir, 'state', 'env'), 'utf8');
        expect(env).toContain(`export XSMETA_SOCKET=${socket}\n`);
        const reply = await new Promise<string>((resolve, reject) => {
          const req = http.request(
            { socketPath: socket, method: 'POST', path: '/jsonrpc' },
            (res) => {
              let body = '';
              res.on('data', (c: Buffer) => {
                body += c.toString();
              });
              res.on('end', () => resolve(body));
            },
          );
          req.on('error', reject);
          req.end(JSON.stringify({ jsonrpc: '2.0', method: 'VM.get_all', params: ['x'], id: 1 }));
        });
        expect(JSON.parse(reply)).toEqual({ jsonrpc: '2.0', error: ['HOST_STILL_BOOTING'], id: 0 });
      } finally {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((r) => child.once('exit', r));
          child.kill('SIGTERM');
          await exited;
        }
      }
      expect(existsSync(socket)).toBe(false);
    },
  );
});

describe('the connector (@xsmeta/xapi) against these behaviours', () => {
  it('reports a database dump cut part-way with the task error, not a short dump', async () => {
    const s = await sim();
    const c = await connect(s);
    const whole = await c.dumpDatabase();
    expect(new TextDecoder().decode(whole).endsWith('</database>')).toBe(true);
    s.faults.set({ cut: [{ match: '/pool/xmldbdump', afterBytes: 4096, times: 2 }] });
    expect((await code(c.dumpDatabase())).code).toBe('INTERNAL_ERROR');
    const read = async () => {
      for await (const _ of await c.dumpDatabaseStream()) void _;
    };
    expect((await code(read())).code).toBe('INTERNAL_ERROR');
  });

  it('reports HOST_STILL_BOOTING with its code, not as an answer to another request', async () => {
    const s = await sim({ faults: { emergency: true } });
    for (const transport of ['jsonrpc', 'xmlrpc'] as const)
      expect(await code(connect(s, transport))).toEqual({
        code: 'HOST_STILL_BOOTING',
        params: [],
      });
  });
});
