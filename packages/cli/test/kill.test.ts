import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;
const built = existsSync(new URL('../dist/bin/xsmeta.js', import.meta.url));

async function ourVbds(url: string): Promise<number> {
  const x = await XapiClient.connect({ url, username: 'root', password: 'xsmeta' });
  const n = [
    ...(await x.getAllRecords<{ other_config: Record<string, string> }>('VBD')).values(),
  ].filter((v) => v.other_config['xsmeta-attach']).length;
  await x.logout();
  return n;
}

function backupChild(env: Record<string, string>): {
  kill(sig: NodeJS.Signals): void;
  done: Promise<number | null>;
} {
  const child = spawn(process.execPath, [BIN, 'backup'], {
    env: { ...process.env, ...env },
    stdio: 'ignore',
  });
  return {
    kill: (sig) => child.kill(sig),
    done: new Promise((r) => child.once('exit', (code) => r(code))),
  };
}

/** Runs a node script that imports the built runtime, and returns its exit code and stderr. */
function runtimeChild(script: string): Promise<{ code: number | null; stderr: string }> {
  const runtime = new URL('../dist/runtime.js', import.meta.url).href;
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `import { onCleanup } from '${runtime}';\n${script}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((r) => child.once('exit', (code) => r({ code, stderr })));
}

it.skipIf(!built)(
  'a signal runs the pending clean-ups and says so; with none pending it says nothing (needs dist)',
  async () => {
    const pending = await runtimeChild(
      `onCleanup(async () => { process.stderr.write('unplugged\\n'); });
       process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 5000);`,
    );
    expect(pending.code).toBe(143);
    expect(pending.stderr).toBe(
      '\nSIGTERM: cleaning up (unplugging the backup disk) ...\nunplugged\n',
    );
    const done = await runtimeChild(
      `const off = onCleanup(async () => {}); off();
       process.kill(process.pid, 'SIGINT'); setTimeout(() => {}, 5000);`,
    );
    expect(done).toEqual({ code: 130, stderr: '' });
    // Clean-ups run last registered first (a device closes before its VBD is unplugged).
    const order = await runtimeChild(
      `for (const n of ['lock', 'vbd', 'device']) onCleanup(async () => { process.stderr.write(n + '\\n'); });
       process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 5000);`,
    );
    expect(order.stderr.split('\n').slice(2)).toEqual(['device', 'vbd', 'lock', '']);
    // A second Ctrl-C while the clean-up runs does not cut it short.
    const twice = await runtimeChild(
      `onCleanup(() => new Promise((r) => setTimeout(r, 400)).then(() => { process.stderr.write('unplugged\\n'); }));
       process.kill(process.pid, 'SIGINT');
       setTimeout(() => process.kill(process.pid, 'SIGINT'), 100); setTimeout(() => {}, 5000);`,
    );
    expect(twice).toEqual({
      code: 130,
      stderr:
        '\nSIGINT: cleaning up (unplugging the backup disk) ...\nSIGINT: still cleaning up ...\nunplugged\n',
    });
  },
);

it.skipIf(!built)(
  'killing backups at random points never damages earlier backups; SIGINT/SIGTERM unplug, the next run cleans up after SIGKILL (needs dist)',
  async () => {
    const p = await pool({ vms: 60 });
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      p.sim.faults.set({ latencyMs: 3 });
      let rnd = 12345;
      const next = () => {
        rnd = (rnd * 1103515245 + 12345) >>> 0;
        return rnd;
      };
      for (let round = 0; round < 6; round++) {
        const sig: NodeJS.Signals =
          round % 3 === 0 ? 'SIGKILL' : round % 3 === 1 ? 'SIGTERM' : 'SIGINT';
        const c = backupChild(p.env);
        await new Promise((r) => setTimeout(r, 150 + (next() % 900)));
        c.kill(sig);
        const code = await c.done;
        if (sig !== 'SIGKILL' && code !== 0) {
          // A signal handled mid-run: the VBD is gone and no device is left behind.
          expect(await ourVbds(p.sim.url)).toBe(0);
          expect(readdirSync(p.env.XSMETA_DEV_DIR!)).toEqual([]);
        }
        // Whatever happened, the ring verifies and the first backup is still there.
        p.sim.faults.clear();
        const v = capture();
        expect(await xsmeta(['verify', '--json'], v)).toBe(0);
        const rep = JSON.parse(v.stdout[0]!) as { ok: boolean; records: { seq: number }[] };
        expect(rep.ok).toBe(true);
        expect(rep.records.map((r) => r.seq)).toContain(1);
        p.sim.faults.set({ latencyMs: 3 });
        // The next backup succeeds (and removes a VBD a SIGKILL left behind).
        p.sim.faults.clear();
        expect(await xsmeta(['backup'], capture())).toBe(0);
        expect(await ourVbds(p.sim.url)).toBe(0);
        expect(readdirSync(p.env.XSMETA_DEV_DIR!)).toEqual([]);
        p.sim.faults.set({ latencyMs: 3 });
      }
      expect(readdirSync(join(p.env.XSMETA_STATE_DIR!, 'locks'))).toEqual([]);
    });
    await p.close();
  },
  120_000,
);

it('a VBD left by a process that is gone is removed by the next run, reader or writer; a live one is left alone', async () => {
  const p = await pool({ vms: 3, srs: 1 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const [sr] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
    const vdi = await x.call<string>('VDI.get_by_uuid', backupVdiUuid(sr!.uuid));
    const [dom0] = [
      ...(await x.getAllRecords<{ is_control_domain: boolean }>('VM')).entries(),
    ].find(([, v]) => v.is_control_domain)!;
    // The pid of a process that has exited, and ours (alive).
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const vbd = (owner: string | null) =>
      x.call<string>('VBD.create', {
        VM: dom0,
        VDI: vdi,
        userdevice: 'autodetect',
        bootable: false,
        mode: 'RO',
        type: 'Disk',
        unpluggable: true,
        empty: false,
        other_config: { 'xsmeta-attach': 'true', ...(owner ? { 'xsmeta-owner': owner } : {}) },
        qos_algorithm_type: '',
        qos_algorithm_params: {},
      });
    const dead = await vbd(`${hostname()}:${gone}`);
    const live = await vbd(`${hostname()}:${process.pid}`);
    const elsewhere = await vbd(`another-host:${gone}`);
    const old = await vbd(null);
    const left = async () => new Set(await x.call<string[]>('VDI.get_VBDs', vdi));
    // A reader removes only the dead process's VBD ...
    expect(await xsmeta(['list'], capture())).toBe(0);
    expect(await left()).toEqual(new Set([live, elsewhere, old]));
    // ... a writer (holding the SR's lock) also the one an older xsmeta left without an owner.
    expect(await xsmeta(['backup'], capture())).toBe(0);
    expect(await left()).toEqual(new Set([live, elsewhere]));
    expect(dead).toBeTruthy();
    await x.logout();
  });
  await p.close();
});

it.skipIf(!built)(
  'a backup cut short by a signal is recorded as interrupted, after its VBD is gone (needs dist)',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xsmeta-cli-'));
    // Killed the moment it reads the VM records: after BackupStarted, before the write.
    let kill: () => void = () => {};
    const sim = await startSimulator({
      stateDir: join(dir, 'sim'),
      vms: 30,
      seed: 3,
      log: (line) => {
        if (line.startsWith('VBD.get_all_records')) kill();
      },
    });
    const env = { ...sim.env, XSMETA_STATE_DIR: join(dir, 'state') };
    await withEnv(env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      sim.faults.set({ latencyMs: 10 });
      const c = backupChild(env);
      kill = () => {
        kill = () => {};
        c.kill('SIGTERM');
      };
      expect(await c.done).toBe(143);
      sim.faults.clear();
      expect(await ourVbds(sim.url)).toBe(0);
      const h = capture();
      expect(await xsmeta(['history', '--json'], h)).toBe(0);
      const events = JSON.parse(h.stdout[0]!) as { stream: string; type: string; data: never }[];
      const runs = [...new Set(events.map((e) => e.stream))].filter((s) => s.startsWith('backup-'));
      expect(runs).toHaveLength(2);
      expect(events.filter((e) => e.stream === runs[1])).toMatchObject([
        { type: 'BackupStarted' },
        {
          type: 'BackupFailed',
          data: { code: 'INTERRUPTED', reason: 'interrupted by SIGTERM' },
        },
      ]);
    });
    await sim.close();
    await rm(dir, { recursive: true, force: true });
  },
  60_000,
);
