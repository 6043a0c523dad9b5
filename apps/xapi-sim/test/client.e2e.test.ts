// The connector (@xsmeta/xapi) against the simulated pool over real HTTP on loopback: every
// call and handler xsmeta uses, on both transports, including the errors and the fault knobs.
// Written by the packages/xapi side (issue 5).
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  backupVdiUuid,
  type HostRecord,
  type NetworkRecord,
  type PoolRecord,
  type SrRecord,
  type TaskRecord,
  type VbdRecord,
  type VdiRecord,
  type VifRecord,
  type VmRecord,
  XapiClient,
} from '@xsmeta/xapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newDom0Vbd, newVdi as newTestVdi, xapiFailure } from '../../../test-support/xapi.js';
import { type Simulator, startSimulator } from '../src/index.js';

const PASSWORD = 'e2e-Secret-pw';
let sim: Simulator;
let dir: string;
const clients: XapiClient[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xapi-e2e-'));
  sim = await startSimulator({ stateDir: dir, vms: 6, srs: 2, seed: 11, password: PASSWORD });
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.logout()));
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

async function connect(
  transport: 'jsonrpc' | 'xmlrpc' | 'auto' = 'auto',
  extra: { timeoutMs?: number } = {},
): Promise<XapiClient> {
  const c = await XapiClient.connect({
    url: sim.url,
    username: 'root',
    password: PASSWORD,
    transport,
    ...extra,
  });
  clients.push(c);
  return c;
}

/** The XapiError of a call that must fail, which never shows the password. */
const failure = (p: Promise<unknown>) => xapiFailure(p, PASSWORD);

function guests(vms: Map<string, VmRecord>): [string, VmRecord][] {
  return [...vms].filter(([, v]) => !v.is_a_template && !v.is_control_domain && !v.is_a_snapshot);
}

describe.each(['jsonrpc', 'xmlrpc'] as const)('connector over %s', (transport) => {
  it('reads typed records of every class with the field names and types of XAPI', async () => {
    const c = await connect(transport);
    expect(c.transport).toBe(transport);
    const [pool] = (await c.getAllRecords<PoolRecord>('pool')).values();
    expect(pool!.master).toMatch(/^OpaqueRef:/);
    expect(pool!.default_SR).toMatch(/^OpaqueRef:/);
    const host = await c.getRecord<HostRecord>('host', pool!.master);
    expect(typeof host.address).toBe('string');
    const srs = await c.getAllRecords<SrRecord>('SR');
    const sr = srs.get(pool!.default_SR)!;
    expect(typeof sr.name_label).toBe('string');
    expect(typeof sr.physical_utilisation).toBe('number');
    const vdis = await c.getAllRecords<VdiRecord>('VDI');
    const vdi = [...vdis.values()].find((v) => v.type === 'user')!;
    expect(typeof vdi.virtual_size).toBe('number');
    expect(vdi.virtual_size).toBeGreaterThan(0);
    expect(typeof vdi.sharable).toBe('boolean');
    expect(typeof vdi.read_only).toBe('boolean');
    expect(srs.has(vdi.SR)).toBe(true);
    const vbds = await c.getAllRecords<VbdRecord>('VBD');
    const vbd = [...vbds.values()][0]!;
    expect(typeof vbd.userdevice).toBe('string');
    expect(typeof vbd.currently_attached).toBe('boolean');
    const vms = await c.getAllRecords<VmRecord>('VM');
    expect(guests(vms)).toHaveLength(6);
    expect([...vms.values()].filter((v) => v.is_control_domain)).toHaveLength(1);
    const [, vm] = guests(vms)[0]!;
    expect(['Halted', 'Running', 'Suspended', 'Paused']).toContain(vm.power_state);
    expect(Array.isArray(vm.VBDs)).toBe(true);
    expect(Array.isArray(vm.VIFs)).toBe(true);
    expect(typeof vm.other_config).toBe('object');
    expect(typeof vm.memory_static_max).toBe('number');
    // An int on both transports (XML-RPC sends it as a string the client decodes).
    expect(vm.version).toBe(0);
    // Non-empty, so the checks below check something.
    expect(vm.VBDs.length).toBeGreaterThan(0);
    expect(vm.VIFs.length).toBeGreaterThan(0);
    for (const ref of vm.VBDs) expect(vbds.has(ref)).toBe(true);
    const nets = await c.getAllRecords<NetworkRecord>('network');
    const vifs = await c.getAllRecords<VifRecord>('VIF');
    for (const ref of vm.VIFs) expect(nets.has(vifs.get(ref)!.network)).toBe(true);
    const task = await c.call<string>('task.create', 'e2e', '');
    const rec = await c.getRecord<TaskRecord>('task', task);
    expect(rec.status).toBe('pending');
    // xapi writes 20240101T12:00:00Z; the colons are optional for the parser
    expect(rec.created).toMatch(/^\d{8}T\d\d:?\d\d:?\d\dZ$/);
    expect(Array.isArray(rec.error_info)).toBe(true);
    await c.call('task.destroy', task);
  });

  it('reports XAPI errors with their codes and params', async () => {
    const c = await connect(transport);
    const a = await failure(c.call('VM.get_record', 'OpaqueRef:nope'));
    expect([a.code, a.params]).toEqual(['HANDLE_INVALID', ['VM', 'OpaqueRef:nope']]);
    const b = await failure(c.call('SR.get_by_uuid', '00000000-0000-0000-0000-000000000000'));
    expect(b.code).toBe('UUID_INVALID');
    expect((await failure(c.call('VM.no_such_call'))).code).toBe('MESSAGE_METHOD_UNKNOWN');
    const d = await failure(
      XapiClient.connect({ url: sim.url, username: 'root', password: 'bad', transport }),
    );
    expect([d.code, d.params[0]]).toEqual(['SESSION_AUTHENTICATION_FAILED', 'root']);
  });

  it('logs in again when the session is gone', async () => {
    const c = await connect(transport);
    const first = c.sessionRef;
    await c.call('session.logout');
    expect((await c.getAllRecords('VM')).size).toBeGreaterThan(6);
    expect(c.sessionRef).not.toBe(first);
  });

  it('runs Async calls through tasks and destroys them', async () => {
    const c = await connect(transport);
    const [pool] = (await c.getAllRecords<PoolRecord>('pool')).values();
    const uuid = await c.callAsync<string>('SR.get_uuid', pool!.default_SR);
    expect(uuid).toMatch(/^[0-9a-f-]{36}$/);
    const e = await failure(c.callAsync('VDI.destroy', 'OpaqueRef:none'));
    expect([e.code, e.params]).toEqual(['HANDLE_INVALID', ['VDI', 'OpaqueRef:none']]);
    const tasks = await c.getAllRecords<TaskRecord>('task');
    expect([...tasks.values()].filter((t) => t.name_label.startsWith('Async.'))).toEqual([]);
  });

  it('creates the backup VDI, plugs it into dom0, writes and reads it raw, cleans up', async () => {
    const c = await connect(transport);
    const created = await newTestVdi(c, {
      size: 4 * 1024 * 1024,
      name: 'Pool Metadata Backup',
      description: 'xsmeta e2e',
    });
    const vdi = created.ref;
    try {
      const rec = created.record;
      expect(rec.uuid).toBe(backupVdiUuid(created.srUuid));
      expect(rec.virtual_size).toBe(4 * 1024 * 1024);
      const vbd = await newDom0Vbd(c, vdi);
      await c.call('VBD.plug', vbd);
      const device = await c.call<string>('VBD.get_device', vbd);
      expect(existsSync(join(sim.env.XSMETA_DEV_DIR!, device))).toBe(true);
      expect((await failure(c.call('VBD.plug', vbd))).code).toBe('DEVICE_ALREADY_ATTACHED');
      await c.call('VBD.unplug', vbd);
      await c.call('VBD.destroy', vbd);

      const data = randomBytes(4 * 1024 * 1024);
      async function* pieces(): AsyncGenerator<Uint8Array> {
        for (let off = 0; off < data.length; off += 256 * 1024) {
          yield data.subarray(off, off + 256 * 1024);
        }
      }
      await c.importRawVdi(vdi, pieces(), { length: data.length });
      const back: Buffer[] = [];
      for await (const chunk of await c.exportRawVdi(vdi)) back.push(Buffer.from(chunk));
      expect(Buffer.concat(back).equals(data)).toBe(true);
    } finally {
      await c.call('VDI.destroy', vdi);
    }
    expect((await failure(c.call('VDI.get_record', vdi))).code).toBe('HANDLE_INVALID');
  });

  it('exports VM metadata and imports it (dry run, force, refusal)', async () => {
    const c = await connect(transport);
    const [[ref, vm]] = guests(await c.getAllRecords<VmRecord>('VM')) as [[string, VmRecord]];
    const byUuid = await c.exportMetadata({ uuid: vm.uuid }, { exportSnapshots: false });
    const byRef = await c.exportMetadata({ ref }, { exportSnapshots: false });
    expect(new TextDecoder().decode(byUuid.subarray(0, 7))).toBe('ova.xml');
    // The same objects; only the export ids differ (xapi's id counter is never reset).
    const uuids = (b: Uint8Array) =>
      [...new TextDecoder().decode(b).matchAll(/<name>uuid<\/name><value>([^<]+)</g)]
        .map((m) => m[1])
        .sort();
    expect(uuids(byRef)).toEqual(uuids(byUuid));
    expect(await c.importMetadata(byUuid, { dryRun: true, force: true })).toEqual([]);
    const refused = await failure(c.importMetadata(byUuid, {}));
    expect(refused.code).toBe('VM_TO_IMPORT_IS_NOT_NEWER_VERSION');
    const created = await c.importMetadata(byUuid, { force: true });
    expect(created).toHaveLength(1);
    expect((await c.getRecord<VmRecord>('VM', created[0]!)).uuid).toBe(vm.uuid);
  });

  it('dumps the pool database (buffered and streamed) and checks a restore', async () => {
    const c = await connect(transport);
    const dump = Buffer.from(await c.dumpDatabase()).toString('utf8');
    expect(dump).toMatch(/<database><manifest><pair key="schema_major_vsn" value="5"\/>/);
    let streamed = '';
    for await (const chunk of await c.dumpDatabaseStream()) {
      streamed += Buffer.from(chunk).toString('utf8');
    }
    expect(streamed.slice(0, 200)).toBe(dump.slice(0, 200));
    await c.restoreDatabase(Buffer.from(dump), { dryRun: true });
    const e = await failure(
      c.restoreDatabase(Buffer.from(dump.replace('value="5"', 'value="6"')), { dryRun: true }),
    );
    expect(e.code).toBe('RESTORE_INCOMPATIBLE_VERSION');
  });
});

describe('connector with the fault knobs', () => {
  it('falls back to nothing: auto picks JSON-RPC on the simulator', async () => {
    expect((await connect('auto')).transport).toBe('jsonrpc');
  });

  it('maps injected failures, dropped connections and latency to typed errors', async () => {
    const c = await connect('auto', { timeoutMs: 300 });
    try {
      sim.faults.set({
        fail: [{ match: 'VM.get_all_records', code: 'INTERNAL_ERROR', params: ['injected'] }],
      });
      const e = await failure(c.getAllRecords('VM'));
      expect([e.code, e.params]).toEqual(['INTERNAL_ERROR', ['injected']]);
      // a read-only call is sent once more after a reset; a second drop is reported
      sim.faults.set({ drop: [{ match: 'SR.get_all_records', times: 1 }] });
      expect((await c.getAllRecords('SR')).size).toBe(2);
      sim.faults.set({ drop: [{ match: 'SR.get_all_records', times: 2 }] });
      expect((await failure(c.getAllRecords('SR'))).code).toBe('XAPI_TRANSPORT');
      // a call that changes the pool is never sent twice
      sim.faults.set({ drop: [{ match: 'task.create', times: 1 }] });
      expect((await failure(c.call('task.create', 'dropped', ''))).code).toBe('XAPI_TRANSPORT');
      sim.faults.clear();
      const tasks = await c.getAllRecords<TaskRecord>('task');
      expect([...tasks.values()].filter((t) => t.name_label === 'dropped')).toEqual([]);
      sim.faults.set({ fail: [{ match: '/export_metadata', code: 'VM_BAD_POWER_STATE' }] });
      const [[ref]] = guests(await c.getAllRecords<VmRecord>('VM')) as [[string, VmRecord]];
      expect((await failure(c.exportMetadata({ ref }))).code).toBe('VM_BAD_POWER_STATE');
      // The answer would take 20 s; the 300 ms timeout ends it long before, even under load.
      sim.faults.set({ latencyMs: 20_000 });
      const t0 = Date.now();
      expect((await failure(c.call('VM.get_all_records'))).code).toBe('XAPI_TIMEOUT');
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      sim.faults.clear();
    }
    expect((await c.getAllRecords('VM')).size).toBeGreaterThan(6);
  });

  it('cancels a transfer through its AbortSignal', async () => {
    const c = await connect();
    // The answer would take 20 s; the abort ends the transfer long before, even under load.
    sim.faults.set({ latencyMs: 20_000 });
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const t0 = Date.now();
      const e = await failure(c.dumpDatabase({ signal: ac.signal }));
      expect(e.code).toBe('XAPI_CANCELLED');
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      sim.faults.clear();
    }
  });

  // xapi completes the task_id of a failed handler with the error; the connector reports it.
  it('reports a handler failure (unknown VM, unknown VDI) through the task', async () => {
    const c = await connect();
    const t0 = Date.now();
    const e = await failure(c.exportMetadata({ uuid: '00000000-0000-4000-8000-000000000000' }));
    expect(e.code).toBe('UUID_INVALID');
    expect(e.params).toEqual(['VM', '00000000-0000-4000-8000-000000000000']);
    const v = await failure(
      c.exportRawVdi('OpaqueRef:nope').then(async (it) => {
        for await (const _ of it) {
          // drain
        }
      }),
    );
    // importexport.ml `vdi_of_req`: a vdi that is no known ref is looked up as a uuid.
    expect(v.code).toBe('UUID_INVALID');
    // Reported at once, not after a call timeout: a generous bound still tells them apart.
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('serves 16 exports in parallel over bounded keep-alive sockets', async () => {
    const c = await connect();
    const vms = guests(await c.getAllRecords<VmRecord>('VM'));
    const all = await Promise.all(
      Array.from({ length: 16 }, (_, i) => c.exportMetadata({ ref: vms[i % vms.length]![0] })),
    );
    expect(all.every((t) => t.length > 10_000)).toBe(true);
  });
});

describe('requests of a metadata import', () => {
  it('is task.create, the PUT, task.get_record, task.destroy; RPCs reuse a kept-alive socket, the pool closes the PUT', async () => {
    // xapi answers no task id nor result in the PUT's response and destroys a task it made
    // itself (Xapi_http.with_context), so the import needs a task of ours; once the PUT's
    // connection closes that task is final (import.ml `metadata_handler` sets req.close;
    // http_svr.ml closes after the handler), so one task.get_record reads its outcome.
    const calls: string[] = [];
    const d = await mkdtemp(join(tmpdir(), 'xapi-e2e-count-'));
    const s = await startSimulator({
      stateDir: d,
      vms: 2,
      srs: 1,
      seed: 5,
      password: PASSWORD,
      log: (line) => calls.push(line.trim()),
    });
    let connections = 0;
    const proxy = net.createServer((down) => {
      connections++;
      const up = net.connect(s.port, '127.0.0.1');
      down.pipe(up).on('error', () => down.destroy());
      up.pipe(down).on('error', () => up.destroy());
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    let c: XapiClient | undefined;
    try {
      const port = (proxy.address() as net.AddressInfo).port;
      c = await XapiClient.connect({
        url: `http://127.0.0.1:${port}`,
        username: 'root',
        password: PASSWORD,
      });
      const [ref] = guests(await c.getAllRecords<VmRecord>('VM'))[0]!;
      const tar = await c.exportMetadata({ ref }, { exportSnapshots: false });
      // the export's connection was closed by the pool: an RPC opens the kept-alive one
      await c.call('pool.get_all');
      const n = 4;
      calls.length = 0;
      const before = connections;
      for (let i = 0; i < n; i++)
        expect(await c.importMetadata(tar, { dryRun: true, force: true })).toEqual([]);
      expect(calls).toEqual(
        Array.from({ length: n }, () => ['task.create', 'task.get_record', 'task.destroy']).flat(),
      );
      // one new connection per import: the PUT takes the free kept-alive socket and the pool
      // closes it, so the next call opens another
      expect(connections - before).toBe(n);
    } finally {
      await c?.logout();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      await s.close();
      await rm(d, { recursive: true, force: true });
    }
  });
});
