/**
 * The tool's fixes for a real pool, each driven through the simulator's own knob for the
 * behaviour xapi has (apps/xapi-sim's fault knobs), not through a fake: a busy VM
 * (ocaml/xapi/export.ml `lock_vm`), emergency mode (ocaml/xapi/api_server.ml), racy network
 * matching (ocaml/xapi/import.ml `Net`), a failed dom0 unplug (ocaml/xapi/xapi_vbd.ml).
 */

import { readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { describe, expect, it } from 'vitest';
import { retryTiming } from '../src/adapters/clock.js';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { allEvents, capture, devicesLeft, pool, withEnv } from './support.js';

type R = Record<string, unknown>;

async function connect(env: Record<string, string>): Promise<XapiClient> {
  return XapiClient.connect({
    url: env.XSMETA_URL!,
    username: 'root',
    password: env.XSMETA_PASSWORD!,
  });
}

/** An HTTP relay in front of the simulator that records each handler request and its status. */
async function recorder(
  target: string,
): Promise<{ url: string; seen: { url: URL; status: number }[]; close(): Promise<void> }> {
  const seen: { url: URL; status: number }[] = [];
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        if (url.pathname === '/export_metadata') seen.push({ url, status: r.statusCode ?? 0 });
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The VBDs the tool made (other_config xsmeta-attach) that are still there. */
async function oursLeft(env: Record<string, string>): Promise<[string, R][]> {
  const xapi = await connect(env);
  try {
    return [...(await xapi.getAllRecords<R>('VBD')).entries()].filter(
      ([, v]) => (v.other_config as Record<string, string>)['xsmeta-attach'] === 'true',
    );
  } finally {
    await xapi.logout();
  }
}

/** The VMs a backup exports: no control domain, no snapshot, no default template. */
function backedUp(vms: Map<string, R>): [string, R][] {
  return [...vms.entries()].filter(
    ([, v]) =>
      v.is_control_domain !== true &&
      v.is_a_snapshot !== true &&
      !(v.is_a_template === true && (v.other_config as R).default_template === 'true'),
  );
}

describe('a VM the simulator keeps busy (busy knob: export.ml lock_vm)', () => {
  it('refuses the all=true fast path; the per-VM exports retry it, then a partial backup exits 4 and names it', async () => {
    const p = await pool({ vms: 5 });
    const relay = await recorder(p.env.XSMETA_URL!);
    const xapi = await connect(p.env);
    const vms = await xapi.getAllRecords<R>('VM');
    await xapi.logout();
    const all = backedUp(vms);
    const [busyRef, busy] = all.find(([, v]) => v.is_a_template !== true)!;
    const busyUuid = String(busy.uuid);
    const real = retryTiming.sleep;
    const waits: number[] = [];
    retryTiming.sleep = async (ms) => void waits.push(ms);
    try {
      await withEnv({ ...p.env, XSMETA_URL: relay.url }, async () => {
        // Nothing busy: the one all=true request serves every VM.
        expect(await xeBackup(['-c'], capture())).toBe(0);
        expect(relay.seen.map((s) => `${s.url.searchParams.get('all')} ${s.status}`)).toEqual([
          'true 200',
        ]);
        relay.seen.length = 0;

        p.sim.faults.set({ busy: [{ vm: busyUuid }] });
        const io = capture();
        expect(await xeBackup([], io)).toBe(4);
        p.sim.faults.clear();

        // The fast path was asked and refused (xapi locks every VM of it), then each VM on its
        // own: the busy one at four attempts (three retries), every other one once. The fast
        // path is streamed with a task of ours, whose error gives xapi's code at once; a
        // refused per-VM export without a task is asked once more with one, to read it.
        const withTask = (s: { url: URL }) => s.url.searchParams.get('task_id') !== null;
        const fast = relay.seen.filter((s) => s.url.searchParams.get('all') === 'true');
        expect(fast.map((s) => [s.status, withTask(s)])).toEqual([[500, true]]);
        const rest = relay.seen.filter((s) => s.url.searchParams.get('all') === null);
        expect(relay.seen.slice(0, 1)).toEqual(fast);
        const byUuid = new Map<string, number[]>();
        for (const s of rest) {
          const u = s.url.searchParams.get('uuid')!;
          byUuid.set(u, [...(byUuid.get(u) ?? []), s.status]);
        }
        expect(byUuid.get(busyUuid)?.every((st) => st === 500)).toBe(true);
        expect(
          rest.filter((s) => s.url.searchParams.get('uuid') === busyUuid && withTask(s)),
        ).toHaveLength(4);
        expect([...byUuid.keys()].sort()).toEqual(all.map(([, v]) => String(v.uuid)).sort());
        for (const [u, statuses] of byUuid) if (u !== busyUuid) expect(statuses).toEqual([200]);
        expect(waits).toEqual([2_000, 5_000, 10_000]);

        // Named on stderr with xapi's code, the backup said partial.
        expect(io.stderr).toEqual([
          `Left out VM ${String(busy.name_label)} (${busyUuid}): xapi kept refusing its export (OTHER_OPERATION_IN_PROGRESS)`,
          expect.stringMatching(/^Backup .+ is partial: 1 VM\(s\) left out; run the backup again/),
        ]);
        const skipped = (await allEvents(p.env.XSMETA_STATE_DIR!)).filter(
          (e) => e.type === 'BackupVmSkipped',
        );
        expect(skipped.map((e) => [e.data.vmUuid, e.data.code, e.data.attempts])).toEqual([
          [busyUuid, 'OTHER_OPERATION_IN_PROGRESS', 4],
        ]);
        expect(String(skipped[0]!.data.reason)).toContain(busyRef);

        const list = capture();
        expect(await xsmeta(['list', '--json'], list)).toBe(0);
        const rows = JSON.parse(list.stdout[0]!) as R[];
        expect(rows[0]).toMatchObject({ seq: 2, skippedVms: 1 });
        expect(rows[1]).not.toHaveProperty('skippedVms');
        const verify = capture();
        expect(await xsmeta(['verify', '--json'], verify)).toBe(0);
        const rep = JSON.parse(verify.stdout[0]!) as { records: R[] };
        expect(rep.records.find((r) => r.seq === 2)).toMatchObject({ skippedVms: 1 });
        expect(rep.records.find((r) => r.seq === 1)).not.toHaveProperty('skippedVms');

        // The restore of the newest backup says it does not hold the busy VM.
        const restore = capture();
        await xeRestore(['-y', '-n'], restore);
        expect(restore.stderr.filter((l) => l.startsWith('This backup does not hold'))).toEqual([
          `This backup does not hold VM ${String(busy.name_label)} (${busyUuid}): it was left out when the backup was taken (OTHER_OPERATION_IN_PROGRESS)`,
        ]);
      });
    } finally {
      retryTiming.sleep = real;
      await relay.close();
    }
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
    await p.close();
  }, 120_000);
});

describe('a host in emergency mode (emergency knob: api_server.ml)', () => {
  it('fails each command with HOST_STILL_BOOTING in its one stderr line, not XAPI_PROTOCOL', async () => {
    const p = await pool({ vms: 2 });
    await withEnv(p.env, async () => {
      expect(await xeBackup(['-c'], capture())).toBe(0);
      p.sim.faults.set({ emergency: true });
      for (const [run, args] of [
        [xsmeta, ['list']],
        [xsmeta, ['backup']],
        [xeBackup, []],
        [xeRestore, ['-l']],
      ] as const) {
        const io = capture();
        expect(await run([...args], io)).toBe(1);
        expect(io.stderr).toHaveLength(1);
        expect(io.stderr[0]).toContain('HOST_STILL_BOOTING');
        expect(io.stderr[0]).not.toContain('XAPI_PROTOCOL');
      }
      p.sim.faults.clear();
    });
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
    await p.close();
  }, 60_000);
});

describe('a dom0 unplug that fails (unplugFail knob: xapi_vbd.ml unplug = unplug_force)', () => {
  it('is reported as VBD_LEFT_BEHIND with the xe lines; the VBD left is that one and no other', async () => {
    const p = await pool({ vms: 2 });
    await withEnv(p.env, async () => {
      expect(await xeBackup(['-c'], capture())).toBe(0);
      const before = capture();
      expect(await xsmeta(['list', '--json'], before)).toBe(0);
      p.sim.faults.set({ unplugFail: {} });
      const io = capture();
      expect(await xeBackup([], io)).toBe(1);
      p.sim.faults.clear();

      const xapi = await connect(p.env);
      const ours = await oursLeft(p.env);
      // Exactly one VBD stays, still plugged, and it is the one the message names.
      expect(ours).toHaveLength(1);
      const [ref, vbd] = ours[0]!;
      expect(vbd.currently_attached).toBe(true);
      const vdiUuid = await xapi.call<string>('VDI.get_uuid', vbd.VDI);
      expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([vdiUuid]);
      expect(io.stderr).toHaveLength(1);
      const line = io.stderr[0]!;
      expect(line).toContain('VBD_LEFT_BEHIND');
      expect(line).toContain('DEVICE_DETACH_REJECTED');
      expect(line).toContain(`VDI ${vdiUuid} is still plugged into the control domain`);
      const uuid = String(vbd.uuid);
      expect(line).toContain(`'xe vbd-unplug uuid=${uuid}' then 'xe vbd-destroy uuid=${uuid}'`);

      // The run that failed is over (a cron run exits): its owner stamp names a process
      // that is gone. The next run, the pool letting go again, removes the VBD it left.
      const owner = JSON.parse((vbd.other_config as Record<string, string>)['xsmeta-owner']!);
      await xapi.call('VBD.remove_from_other_config', ref, 'xsmeta-owner');
      await xapi.call(
        'VBD.add_to_other_config',
        ref,
        'xsmeta-owner',
        JSON.stringify({ ...owner, start: `${owner.start}0` }),
      );
      await xapi.logout();
      expect(await xeBackup([], capture())).toBe(0);
      expect(await oursLeft(p.env)).toEqual([]);
      expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);

      // One refused unplug is forced (on dom0 the same call, which then passes): no leak.
      p.sim.faults.set({ unplugFail: { times: 1 } });
      const once = capture();
      expect(await xeBackup([], once)).toBe(0);
      p.sim.faults.clear();
      expect(once.stderr).toEqual([]);
      expect(await oursLeft(p.env)).toEqual([]);
      expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
    });
    await p.close();
  }, 60_000);
});

describe('restore into a fresh pool with racy network matching (importBarrier knob: import.ml Net)', () => {
  it('creates each missing network exactly once, and no VM fails with BRIDGE_NAME_EXISTS', async () => {
    const p = await pool({ vms: 10 });
    await p.sim.close();
    // The pool's guest networks get names and bridges a new pool will not have (its own are
    // the two pool-wide ones on xenbr0 and xenbr1), so the restore must create them.
    const state = join(p.dir, 'sim', 'pool.json');
    const saved = JSON.parse(await readFile(state, 'utf8')) as {
      db: Record<string, Record<string, R>>;
    };
    const used = new Set<string>();
    for (const vif of Object.values(saved.db.VIF!)) used.add(String(vif.network));
    let k = 0;
    for (const ref of used) {
      const n = saved.db.network![ref]!;
      n.name_label = `Guest network ${k}`;
      n.bridge = `xapi${7 + k++}`;
    }
    await writeFile(state, JSON.stringify(saved));
    const names = [...used].map((ref) => String(saved.db.network![ref]!.name_label));
    expect(names.length).toBeGreaterThan(1);
    const vms = new Map(Object.entries(saved.db.VM!));
    const restored = backedUp(vms);
    const [poolRec] = Object.values(saved.db.pool!);
    const srUuid = String(saved.db.SR![String(poolRec!.default_SR)]!.uuid);
    const old = await startSimulator({ stateDir: join(p.dir, 'sim') });
    await withEnv({ ...old.env, XSMETA_STATE_DIR: p.env.XSMETA_STATE_DIR! }, async () => {
      expect(await xeBackup(['-c', '-u', srUuid], capture())).toBe(0);
    });
    await old.close();
    const sim = await startSimulator({
      stateDir: join(p.dir, 'sim'),
      freshPool: true,
      faults: { importBarrier: { count: 2, timeoutMs: 2000 } },
    });
    try {
      const x = await XapiClient.connect({ url: sim.url, username: 'root', password: 'xsmeta' });
      const networkNames = async () =>
        [...(await x.getAllRecords<R>('network')).values()].map((n) => String(n.name_label));
      const fresh = await networkNames();
      const missing = names.filter((n) => !fresh.includes(n));
      expect(missing).toEqual(names);
      await withEnv({ ...sim.env, XSMETA_STATE_DIR: p.env.XSMETA_STATE_DIR! }, async () => {
        const io = capture();
        const code = await xeRestore(['-u', srUuid, '-y', '-m', 'all'], io);
        expect(io.stdout.join('\n')).not.toContain('BRIDGE_NAME_EXISTS');
        expect(io.stdout.at(-1)).toBe(`Restored ${restored.length} VM(s), and 0 error(s)`);
        expect(code).toBe(0);
      });
      const after = await networkNames();
      for (const n of names) expect(after.filter((a) => a === n)).toEqual([n]);
      // Nothing else was created: the fresh pool's own networks plus the missing ones.
      expect(after.sort()).toEqual([...fresh, ...missing].sort());
      await x.logout();
    } finally {
      await sim.close();
    }
    await p.close();
  }, 120_000);
});
