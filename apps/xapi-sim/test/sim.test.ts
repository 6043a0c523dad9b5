import { execFile } from 'node:child_process';
import { existsSync, readlinkSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { backupVdiUuid, XapiClient, XapiError } from '@xsmeta/xapi';
import { afterAll, describe, expect, it } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';
import { newDom0Vbd, newVdi } from '../../../test-support/xapi.js';
import { type Simulator, startSimulator } from '../src/index.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function sim(opts: Partial<Parameters<typeof startSimulator>[0]> = {}): Promise<Simulator> {
  const stateDir = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'xapi-sim-')));
  dirs.push(stateDir);
  return startSimulator({ vms: 6, srs: 2, seed: 7, ...opts, stateDir });
}
const connect = (s: Simulator, transport: 'jsonrpc' | 'xmlrpc' = 'jsonrpc') =>
  XapiClient.connect({ url: s.url, username: 'root', password: 'xsmeta', transport });

type Vm = {
  uuid: string;
  name_label: string;
  is_a_template: boolean;
  is_control_domain: boolean;
  is_a_snapshot: boolean;
  VBDs: string[];
  VIFs: string[];
  other_config: Record<string, string>;
};

describe('xapi-sim', () => {
  it('serves a deterministic seeded pool over both transports, with real errors', async () => {
    const a = await sim();
    const b = await sim();
    for (const transport of ['jsonrpc', 'xmlrpc'] as const) {
      const c = await connect(a, transport);
      const vms = [...(await c.getAllRecords<Vm>('VM')).values()];
      expect(vms.filter((v) => !v.is_a_template && !v.is_control_domain)).toHaveLength(6);
      expect(vms.filter((v) => v.is_control_domain)).toHaveLength(1);
      expect(vms.some((v) => v.is_a_snapshot)).toBe(true);
      await expect(c.call('VM.get_record', 'OpaqueRef:nope')).rejects.toMatchObject({
        code: 'HANDLE_INVALID',
        params: ['VM', 'OpaqueRef:nope'],
      });
      await expect(c.call('VM.no_such_call')).rejects.toMatchObject({
        code: 'MESSAGE_METHOD_UNKNOWN',
      });
      await c.logout();
    }
    const ca = await connect(a);
    const cb = await connect(b);
    const names = async (c: XapiClient) =>
      [...(await c.getAllRecords<Vm>('VM')).values()]
        .map((v) => `${v.uuid}:${v.name_label}`)
        .sort();
    expect(await names(ca)).toEqual(await names(cb));
    await expect(
      XapiClient.connect({ url: a.url, username: 'root', password: 'wrong' }),
    ).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
    await a.close();
    await b.close();
  });

  it('exports metadata as a tar of ova.xml in the tens of KB, and Async calls complete tasks', async () => {
    const s = await sim();
    const c = await connect(s);
    const vm = [...(await c.getAllRecords<Vm>('VM')).values()].find(
      (v) => !v.is_a_template && !v.is_control_domain,
    )!;
    const tar = await c.exportMetadata({ uuid: vm.uuid });
    expect(new TextDecoder().decode(tar.subarray(0, 7))).toBe('ova.xml');
    expect(tar.length).toBeGreaterThan(10_000);
    const text = new TextDecoder().decode(tar);
    expect(text).toContain('<name>export_vsn</name>');
    expect(text).toContain(vm.uuid);
    expect(text).toMatch(/<name>VBDs<\/name><value><array><data><value>Ref:\d+<\/value>/);
    const uuid = await c.callAsync<string>(
      'VM.get_uuid',
      await c.call<string>('VM.get_by_uuid', vm.uuid),
    );
    expect(uuid).toBe(vm.uuid);
    const db = new TextDecoder().decode(await c.dumpDatabase());
    expect(db).toMatch(
      /^<\?xml[^>]*><database><manifest><pair key="schema_major_vsn" value="5"\/>/,
    );
    expect(db).toContain('name__label=');
    await c.restoreDatabase(new TextEncoder().encode(db), { dryRun: true });
    await expect(
      c.restoreDatabase(new TextEncoder().encode(db.replace('value="5"', 'value="6"')), {
        dryRun: true,
      }),
    ).rejects.toMatchObject({ code: 'RESTORE_INCOMPATIBLE_VERSION' });
    await s.close();
  });

  it('creates the backup VDI with the derived uuid, plugs it into dom0 as a device, scans SRs', async () => {
    const s = await sim();
    const c = await connect(s);
    const {
      ref: vdi,
      srUuid,
      record: vdiRec,
    } = await newVdi(c, { size: 64 * 1024 * 1024, name: 'Pool Metadata Backup' });
    expect(vdiRec.uuid).toBe(backupVdiUuid(srUuid));
    const vbd = await newDom0Vbd(c, vdi, { otherConfig: { 'xsmeta-attach': 'true' } });
    // other_config is kept as given (clients find their own VBDs by it after a crash).
    expect(await c.call('VBD.get_other_config', vbd)).toEqual({ 'xsmeta-attach': 'true' });
    await c.call('VBD.plug', vbd);
    const device = await c.call<string>('VBD.get_device', vbd);
    expect(device).toBe(`sm/backend/${srUuid}/${vdiRec.uuid}`);
    const link = join(s.env.XSMETA_DEV_DIR!, device);
    expect(readlinkSync(link)).toContain(vdiRec.uuid);
    expect(statSync(link).size).toBe(64 * 1024 * 1024);
    await expect(c.call('VBD.destroy', vbd)).rejects.toBeInstanceOf(XapiError);
    await c.call('VBD.unplug', vbd);
    expect(existsSync(link)).toBe(false);
    await c.call('VBD.destroy', vbd);
    await s.close();
  });

  it('survives a restart; --fresh-pool keeps only the storage; imports follow import.ml', async () => {
    const s = await sim();
    let c = await connect(s);
    const vms = [...(await c.getAllRecords<Vm>('VM')).values()].filter(
      (v) => !v.is_a_template && !v.is_control_domain,
    );
    const exports = await Promise.all(
      vms.map((v) => c.exportMetadata({ uuid: v.uuid }, { exportSnapshots: false })),
    );
    // Import of an existing VM without force: not newer; with force: replaced.
    await expect(c.importMetadata(exports[0]!, { dryRun: false })).rejects.toMatchObject({
      code: 'VM_TO_IMPORT_IS_NOT_NEWER_VERSION',
    });
    await s.close();
    const again = await startSimulator({ stateDir: s.stateDir });
    c = await connect(again);
    expect((await c.getAllRecords<Vm>('VM')).size).toBeGreaterThan(6);
    await again.close();
    const fresh = await startSimulator({ stateDir: s.stateDir, freshPool: true });
    c = await connect(fresh);
    const after = [...(await c.getAllRecords<Vm>('VM')).values()];
    expect(after.filter((v) => !v.is_control_domain)).toHaveLength(0);
    const vdisBefore = (await c.getAllRecords('VDI')).size;
    expect(vdisBefore).toBeGreaterThan(6);
    // Dry run: checks only, nothing created.
    expect(await c.importMetadata(exports[0]!, { dryRun: true })).toEqual([]);
    expect((await c.getAllRecords('VM')).size).toBe(after.length);
    const refs = await c.importMetadata(exports[0]!, { dryRun: false });
    expect(refs).toHaveLength(1);
    const back = await c.call<Vm>('VM.get_record', refs[0]);
    expect(back.uuid).toBe(vms[0]!.uuid);
    expect(back.name_label).toBe(vms[0]!.name_label);
    expect(back.VBDs.length).toBe(vms[0]!.VBDs.length);
    expect(back.VIFs.length).toBe(vms[0]!.VIFs.length);
    await expect(c.importMetadata(exports[0]!, { dryRun: false })).rejects.toMatchObject({
      code: 'VM_TO_IMPORT_IS_NOT_NEWER_VERSION',
    });
    expect(await c.importMetadata(exports[0]!, { dryRun: false, force: true })).toHaveLength(1);
    // A VM whose disk is gone fails alone with VDI_LOCATION_MISSING.
    const victim = [
      ...(await c.getAllRecords<{ uuid: string; name_label: string }>('VDI')).entries(),
    ].find(([, v]) => exports[1] && new TextDecoder().decode(exports[1]).includes(v.uuid))!;
    await c.call('VDI.destroy', victim[0]);
    await expect(c.importMetadata(exports[1]!, { dryRun: true })).rejects.toMatchObject({
      code: 'VDI_LOCATION_MISSING',
    });
    await fresh.close();
  });

  it('injects faults: failing calls and dropped connections', async () => {
    const s = await sim({
      faults: {
        fail: [
          { match: 'SR.get_all_records', code: 'INTERNAL_ERROR', params: ['injected'], times: 1 },
        ],
      },
    });
    const c = await connect(s);
    await expect(c.call('SR.get_all_records')).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    expect(Object.keys(await c.call<object>('SR.get_all_records')).length).toBe(2);
    // Twice: a failed export without a task is asked again with one (to read xapi's error).
    s.faults.set({ drop: [{ match: '/export_metadata', times: 2 }] });
    const vm = [...(await c.getAllRecords<Vm>('VM')).values()].find(
      (v) => !v.is_a_template && !v.is_control_domain,
    )!;
    await expect(c.exportMetadata({ uuid: vm.uuid })).rejects.toBeInstanceOf(XapiError);
    expect((await c.exportMetadata({ uuid: vm.uuid })).length).toBeGreaterThan(1000);
    await s.close();
  });

  it("answers Python's standard xmlrpc.client", async () => {
    requireTools('python3');
    const s = await sim();
    const { stdout } = await promisify(execFile)('python3', [
      '-c',
      `
import xmlrpc.client, sys
s = xmlrpc.client.ServerProxy(sys.argv[1] + '/')
r = s.session.login_with_password('root', 'xsmeta', '1.0', 'test')
assert r['Status'] == 'Success', r
vms = s.VM.get_all_records(r['Value'])['Value']
print(sum(1 for v in vms.values() if not v['is_a_template'] and not v['is_control_domain']))
print(s.session.login_with_password('root', 'nope')['ErrorDescription'][0])
`,
      s.url,
    ]);
    const out = stdout.trim().split('\n');
    expect(out).toEqual(['6', 'SESSION_AUTHENTICATION_FAILED']);
    await s.close();
  });

  it('starts a 1,000-VM pool and exports every VM', async () => {
    const s = await sim({ vms: 1000, srs: 2 });
    const c = await connect(s);
    const vms = [...(await c.getAllRecords<Vm>('VM')).values()].filter(
      (v) => !v.is_a_template && !v.is_control_domain,
    );
    expect(vms).toHaveLength(1000);
    let bytes = 0;
    for (let i = 0; i < vms.length; i += 16) {
      const batch = await Promise.all(
        vms.slice(i, i + 16).map((v) => c.exportMetadata({ uuid: v.uuid })),
      );
      bytes += batch.reduce((n, b) => n + b.length, 0);
    }
    expect(bytes / 1000).toBeGreaterThan(10_000);
    await c.logout();
    await s.close();
  }, 300_000);
});
