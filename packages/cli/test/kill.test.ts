import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  type FSWatcher,
  readdirSync,
  readFileSync,
  statSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { newDom0Vbd } from '../../../test-support/xapi.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { built } from './bins.js';
import { childModule } from './child-module.js';
import { capture, devicesLeft, pool, withEnv } from './support.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;

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

/** Runs a node script that imports the signal clean-ups and the event log, and returns its exit code and stderr. */
async function runtimeChild(
  script: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stderr: string }> {
  const runtime = await childModule(
    'kill-runtime',
    "export { onCleanup } from './src/process/signals.js';\n" +
      "export { withEvents } from './src/adapters/event-log.js';\n",
  );
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', `import { onCleanup, withEvents } from '${runtime}';\n${script}`],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } },
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
       process.kill(process.pid, 'SIGTERM'); setInterval(() => {}, 1000);`,
    );
    expect(pending.code).toBe(143);
    expect(pending.stderr).toBe(
      '\nSIGTERM: cleaning up (unplugging the backup disk) ...\nunplugged\n',
    );
    const done = await runtimeChild(
      `const off = onCleanup(async () => {}); off();
       process.kill(process.pid, 'SIGINT'); setInterval(() => {}, 1000);`,
    );
    expect(done).toEqual({ code: 130, stderr: '' });
    // Clean-ups run last registered first (a device closes before its VBD is unplugged), and
    // one registered meanwhile (a call in flight returned) runs too; a dropped one does not.
    const order = await runtimeChild(
      `const say = (n) => async () => { process.stderr.write(n + '\\n'); };
       onCleanup(say('lock')); onCleanup(say('dropped'))();
       onCleanup(async () => { await say('vbd')(); onCleanup(say('late copy')); });
       onCleanup(say('device'));
       process.kill(process.pid, 'SIGTERM'); setInterval(() => {}, 1000);`,
    );
    expect(order.stderr.split('\n').slice(2)).toEqual(['device', 'vbd', 'late copy', 'lock', '']);
    // A clean-up that hangs (a dead pool master) does not keep the process for good.
    const hung = await runtimeChild(
      `onCleanup(async () => { process.stderr.write('lock\\n'); });
       onCleanup(() => new Promise(() => {}));
       process.kill(process.pid, 'SIGTERM'); setInterval(() => {}, 1000);`,
      { XSMETA_CLEANUP_MS: '300' },
    );
    expect(hung.code).toBe(143);
    expect(hung.stderr).toMatch(
      /took longer than 0.3 s: exiting; the next run removes what is left\n$/,
    );
    // A second Ctrl-C while the clean-up runs does not cut it short.
    const twice = await runtimeChild(
      // The clean-up sends the second Ctrl-C itself and ends only once it has been handled.
      `onCleanup(() => {
         const second = new Promise((r) => process.once('SIGINT', () => setImmediate(r)));
         process.kill(process.pid, 'SIGINT');
         return second.then(() => { process.stderr.write('unplugged\\n'); });
       });
       process.kill(process.pid, 'SIGINT'); setInterval(() => {}, 1000);`,
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
    // The kill points are events, not times: the k-th call the pool answers (a backup of 60
    // VMs makes about 155), or the m-th change to the backup disk (the write itself).
    let onCall = () => {};
    const p = await pool({ vms: 60, log: () => onCall() });
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      const image = readdirSync(join(p.dir, 'sim', 'sr'), { recursive: true })
        .map((f) => join(p.dir, 'sim', 'sr', String(f)))
        .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
      p.sim.faults.set({ latencyMs: 3 });
      let rnd = 12345;
      const next = () => {
        rnd = (rnd * 1103515245 + 12345) >>> 0;
        return rnd;
      };
      let interrupted = 0;
      for (let round = 0; round < 6; round++) {
        const sig: NodeJS.Signals =
          round % 3 === 0 ? 'SIGKILL' : round % 3 === 1 ? 'SIGTERM' : 'SIGINT';
        const c = backupChild(p.env);
        let watcher: FSWatcher | undefined;
        if (round % 2 === 0) {
          let calls = 0;
          const k = 1 + (next() % 155);
          onCall = () => {
            if (++calls === k) c.kill(sig);
          };
        } else {
          let changes = 0;
          const m = 1 + (next() % 3);
          watcher = watch(image, () => {
            if (++changes === m) c.kill(sig);
          });
        }
        const code = await c.done;
        onCall = () => {};
        watcher?.close();
        if (sig !== 'SIGKILL' && code !== 0) {
          interrupted++;
          // A signal handled mid-run: the VBD is gone and no device is left behind.
          expect(await ourVbds(p.sim.url)).toBe(0);
          expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
        }
        // Whatever happened, every record verifies and the first backup is still there. A kill
        // after a record's blocks were written and before the root that lists it can only be
        // told from a rolled-back root by the records found beyond it: verify reports that
        // (root warnings, exit 1) and the next backup writes the recovered root back.
        p.sim.faults.clear();
        const v = capture();
        const vcode = await xsmeta(['verify', '--json'], v);
        const rep = JSON.parse(v.stdout[0]!) as {
          ok: boolean;
          root?: { ok: boolean; warnings: string[] };
          records: { seq: number; ok: boolean }[];
        };
        expect(rep.records.every((r) => r.ok)).toBe(true);
        expect(rep.records.map((r) => r.seq)).toContain(1);
        if (vcode !== 0) {
          expect(rep.root?.ok).toBe(false);
          expect(rep.root?.warnings.join(' ')).toMatch(
            /missing from the root \(a damaged, rolled-back or unwritten root\)/,
          );
        }
        p.sim.faults.set({ latencyMs: 3 });
        // The next backup succeeds (and removes a VBD a SIGKILL left behind); the ring is clean.
        p.sim.faults.clear();
        expect(await xsmeta(['backup'], capture())).toBe(0);
        expect(await xsmeta(['verify'], capture())).toBe(0);
        expect(await ourVbds(p.sim.url)).toBe(0);
        expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
        p.sim.faults.set({ latencyMs: 3 });
      }
      expect(readdirSync(join(p.env.XSMETA_STATE_DIR!, 'locks'))).toEqual([]);
      // The checks of a handled signal ran: at least one SIGINT/SIGTERM caught a run mid-way.
      expect(interrupted).toBeGreaterThan(0);
    });
    await p.close();
  },
  300_000,
);

it('a VBD left by a process that is gone is removed by the next run, reader or writer; a live one is left alone', async () => {
  const p = await pool({ vms: 3, srs: 1 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const [sr] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
    const vdi = await x.call<string>('VDI.get_by_uuid', backupVdiUuid(sr!.uuid));
    // The pid of a process that has exited, and ours (alive).
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const vbd = (owner: string | null) =>
      newDom0Vbd(x, vdi, {
        mode: 'RO',
        otherConfig: { 'xsmeta-attach': 'true', ...(owner ? { 'xsmeta-owner': owner } : {}) },
      });
    const owner = (o: Record<string, unknown>) => JSON.stringify({ host: hostname(), ...o });
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const dead = await vbd(owner({ boot: bootId, pid: gone }));
    const live = await vbd(owner({ boot: bootId, pid: process.pid }));
    const rebooted = await vbd(owner({ boot: 'another-boot', pid: process.pid }));
    const reused = await vbd(owner({ boot: bootId, pid: process.pid, start: '1' }));
    const elsewhere = await vbd(JSON.stringify({ host: 'another-host', pid: gone }));
    const old = await vbd(null);
    const left = async () => new Set(await x.call<string[]>('VDI.get_VBDs', vdi));
    // A reader removes only those whose process is gone (dead, the host rebooted, the pid
    // reused) ...
    expect(await xsmeta(['list'], capture())).toBe(0);
    expect(await left()).toEqual(new Set([live, elsewhere, old]));
    // ... a writer (holding the SR's lock) also the one an older xsmeta left without an owner.
    expect(await xsmeta(['backup'], capture())).toBe(0);
    expect(await left()).toEqual(new Set([live, elsewhere]));
    for (const v of [dead, rebooted, reused])
      await expect(x.call('VBD.get_record', v)).rejects.toMatchObject({ code: 'HANDLE_INVALID' });
    await x.logout();
  });
  await p.close();
});

it.skipIf(!built)(
  'a backup cut short by a signal is recorded as interrupted, after its VBD is gone (needs dist)',
  async () => {
    // Killed the moment it reads the VM records: after BackupStarted, before the write.
    let kill: () => void = () => {};
    const p = await pool({
      vms: 30,
      log: (line) => {
        if (line.startsWith('VM.get_all_records')) kill();
      },
    });
    const { sim, env } = p;
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
      expect(await xsmeta(['history', '--kind', 'backup', '--json'], h)).toBe(0);
      const runs = JSON.parse(h.stdout[0]!) as { runId: string; outcome: string }[];
      expect(runs.map((r) => r.outcome)).toEqual(['INTERRUPTED', 'SUCCESS']);
      const one = capture();
      expect(await xsmeta(['history', '--run', runs[0]!.runId, '--json'], one)).toBe(0);
      expect(JSON.parse(one.stdout[0]!)).toMatchObject([
        { type: 'BackupStarted' },
        {
          type: 'BackupFailed',
          data: { code: 'INTERRUPTED', reason: 'interrupted by SIGTERM' },
        },
      ]);
    });
    await p.close();
  },
  300_000,
);

it.skipIf(!built)(
  "after a signal the run's own failure is not recorded, INTERRUPTED is; a lock taken over by another run is left to it (needs dist)",
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xsmeta-cli-'));
    const child = await runtimeChild(
      `// A detach registered after the events (so it runs first), that ends only once the run
       // has reacted and finished: the reaction surely comes while the clean-up is under way.
       // A signal handler keeps no process alive: a live handle does, as the CLI's sockets do.
       setInterval(() => {}, 1000);
       let started, reacted;
       const cleaning = new Promise((r) => { started = r; });
       const reaction = new Promise((r) => { reacted = r; });
       await withEvents(process.env.XSMETA_STATE_DIR, async (ev) => {
         await ev.appendToStream('backup-x', [{ type: 'BackupStarted', data: { runId: 'x', srUuid: 's' } }]);
         onCleanup(() => { started(); return reaction; });
         process.kill(process.pid, 'SIGTERM');
         await cleaning;
         // The run reacts to its closed device, while the clean-up is still under way.
         await ev.appendToStream('backup-x', [{ type: 'BackupFailed', data: { runId: 'x', srUuid: 's', code: 'EBADF', reason: 'closed' } }]);
       }).catch(() => {}); // as the CLI does: the error is reported, the clean-up goes on
       reacted();`,
      { XSMETA_STATE_DIR: dir },
    );
    expect(child.code).toBe(143);
    await withEnv({ XSMETA_STATE_DIR: dir }, async () => {
      const h = capture();
      expect(await xsmeta(['history', '--run', 'x', '--json'], h)).toBe(0);
      expect(JSON.parse(h.stdout[0]!)).toMatchObject([
        { stream: 'backup-x', type: 'BackupStarted' },
        { stream: 'backup-x', type: 'BackupFailed', data: { code: 'INTERRUPTED' } },
      ]);
    });
    // The lock: released once, and only while it is still this run's.
    const lock = join(dir, 'locks', 'backup-sr-1.lock');
    const { lockSr } = await import('../src/process/lock.js');
    const unlock = await lockSr(dir, 'sr-1', false);
    writeFileSync(lock, '1 another-host\n');
    unlock();
    expect(readFileSync(lock, 'utf8')).toBe('1 another-host\n');
    // A lock held by a live process blocks; one whose process is gone (an older xsmeta's
    // `PID HOST` too) is taken over.
    writeFileSync(lock, JSON.stringify({ host: hostname(), pid: process.pid }));
    await expect(lockSr(dir, 'sr-1', false)).rejects.toThrow(
      new RegExp(`is running \\(pid ${process.pid} on ${hostname()}\\)`),
    );
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(lock, `${gone} ${hostname()}\n`);
    (await lockSr(dir, 'sr-1', false))();
    expect(existsSync(lock)).toBe(false);
    await rm(dir, { recursive: true, force: true });
  },
);

it('a VBD whose clean unplug xapi refuses is forced out and destroyed: no disk stays plugged in the control domain', async () => {
  const p = await pool({ vms: 3, srs: 1 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    p.sim.faults.set({ fail: [{ match: 'VBD.unplug', code: 'DEVICE_DETACH_REJECTED', times: 1 }] });
    expect(await xsmeta(['backup'], capture())).toBe(0);
    p.sim.faults.clear();
    expect(await ourVbds(p.sim.url)).toBe(0);
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
  });
  await p.close();
});
