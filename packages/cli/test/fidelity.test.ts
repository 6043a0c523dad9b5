/** What a real pool does that the simulator's defaults do not: each case from xapi's sources. */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { describe, expect, it } from 'vitest';
import { retryTiming } from '../src/adapters/clock.js';
import { XapiPool } from '../src/adapters/xapi-pool.js';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { resolveSettings } from '../src/config.js';
import { allowsNewDisk } from '../src/console.js';
import { runDue } from '../src/schedule.js';
import { capture, pool, withEnv } from './support.js';

type R = Record<string, unknown>;

/** An HTTP relay in front of the simulator that records each request's path and query. */
async function recorder(
  target: string,
): Promise<{ url: string; seen: URL[]; close(): Promise<void> }> {
  const seen: URL[] = [];
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    seen.push(new URL(req.url ?? '/', 'http://x'));
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the metadata export the backup asks for', () => {
  it('leaves snapshots out, as `xe vm-export --metadata` does (cli_operations.ml)', async () => {
    const p = await pool({ vms: 3 });
    const relay = await recorder(p.env.XSMETA_URL!);
    await withEnv({ ...p.env, XSMETA_URL: relay.url }, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    });
    const exports = relay.seen.filter((u) => u.pathname === '/export_metadata');
    expect(exports.length).toBeGreaterThan(0);
    for (const u of exports) expect(u.searchParams.get('export_snapshots')).toBe('false');
    await relay.close();
    await p.close();
  }, 60_000);
});

describe('a VBD that cannot be removed from the control domain', () => {
  it('is reported with what is left plugged and the xe lines that remove it', async () => {
    const p = await pool({ vms: 2 });
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      // On the control domain unplug_force is unplug (ocaml/xapi/xapi_vbd.ml): both fail.
      p.sim.faults.set({ fail: [{ match: 'VBD.unplug*', code: 'SR_BACKEND_FAILURE_46' }] });
      const io = capture();
      expect(await xsmeta(['backup'], io)).toBe(1);
      p.sim.faults.clear();
      const xapi = await XapiClient.connect({
        url: p.env.XSMETA_URL!,
        username: 'root',
        password: p.env.XSMETA_PASSWORD!,
      });
      const left = [...(await xapi.getAllRecords<R>('VBD')).entries()].filter(
        ([, v]) => (v.other_config as Record<string, string>)['xsmeta-attach'] === 'true',
      );
      expect(left).toHaveLength(1);
      const [ref, vbd] = left[0]!;
      expect(vbd.currently_attached).toBe(true);
      expect(io.stderr).toHaveLength(1);
      const line = io.stderr[0]!;
      expect(line).toContain('VBD_LEFT_BEHIND');
      expect(line).toContain('SR_BACKEND_FAILURE_46');
      expect(line).toContain(
        `'xe vbd-unplug uuid=${vbd.uuid as string}' then 'xe vbd-destroy uuid=${vbd.uuid as string}'`,
      );
      await xapi.call('VBD.unplug', ref);
      await xapi.call('VBD.destroy', ref);
      await xapi.logout();
    });
    await p.close();
  }, 60_000);
});

describe('a VM xapi keeps busy during a backup (export.ml lock_vm)', () => {
  it('is retried, then left out: exit 4, named on stderr, partial in list and verify, named by restore', async () => {
    const p = await pool({ vms: 4 });
    const real = retryTiming.sleep;
    const waits: number[] = [];
    retryTiming.sleep = async (ms) => void waits.push(ms);
    try {
      await withEnv(p.env, async () => {
        expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
        const first = capture();
        expect(await xsmeta(['list', '--json'], first)).toBe(0);
        const [full] = JSON.parse(first.stdout[0]!) as { vmCount: number; templateCount: number }[];
        const total = full!.vmCount + full!.templateCount;
        // Every export is refused, the one-request export of all VMs first, then each VM's,
        // retries included (a core test covers a backup that keeps some VMs).
        p.sim.faults.set({
          fail: [{ match: '/export_metadata', code: 'OTHER_OPERATION_IN_PROGRESS' }],
        });
        const io = capture();
        expect(await xeBackup([], io)).toBe(4);
        p.sim.faults.clear();
        const left = io.stderr.filter((l) => l.startsWith('Left out '));
        expect(left).toHaveLength(total);
        for (const l of left) expect(l).toContain('OTHER_OPERATION_IN_PROGRESS');
        expect(io.stderr.at(-1)).toMatch(/is partial: \d+ VM\(s\) left out/);
        expect([...waits].sort((a, b) => a - b)).toEqual(
          Array.from({ length: total }, () => [2_000, 5_000, 10_000])
            .flat()
            .sort((a, b) => a - b),
        );
        const list = capture();
        expect(await xsmeta(['list', '--json'], list)).toBe(0);
        const rows = JSON.parse(list.stdout[0]!) as { seq: number; skippedVms?: number }[];
        expect(rows[0]).toMatchObject({ seq: 2, skippedVms: total });
        expect(rows[1]).not.toHaveProperty('skippedVms');
        const text = capture();
        expect(await xsmeta(['list'], text)).toBe(0);
        expect(text.stdout[0]).toContain(`PARTIAL: ${total} VM(s) left out`);
        const verify = capture();
        expect(await xsmeta(['verify', '--json'], verify)).toBe(0);
        const rep = JSON.parse(verify.stdout[0]!) as {
          records: { seq: number; skippedVms?: number }[];
        };
        expect(rep.records.find((r) => r.seq === 2)).toMatchObject({ skippedVms: total });
        const restore = capture();
        await xeRestore(['-y', '-n'], restore);
        const missing = restore.stderr.filter((l) => l.startsWith('This backup does not hold'));
        expect(missing).toHaveLength(total);
        expect(missing.map((l) => /\(([0-9a-f-]{36})\)/.exec(l)?.[1]).sort()).toEqual(
          left.map((l) => /\(([0-9a-f-]{36})\)/.exec(l)?.[1]).sort(),
        );
      });
    } finally {
      retryTiming.sleep = real;
    }
    await p.close();
  }, 60_000);
});

describe('upstream behaviours of the scripts and the console', () => {
  it('`xe-backup-metadata -c -n` creates the missing disk and stops (scripts/xe-backup-metadata)', async () => {
    const p = await pool({ vms: 2 });
    await withEnv(p.env, async () => {
      const probe = capture();
      expect(await xeBackup(['-n'], probe)).toBe(3);
      const io = capture();
      expect(await xeBackup(['-c', '-n'], io)).toBe(0);
      expect(io.stdout).toHaveLength(1);
      expect(io.stderr.join('\n')).toContain(
        `Created the Pool Metadata Backup VDI ${io.stdout[0]}`,
      );
      const again = capture();
      expect(await xeBackup(['-n'], again)).toBe(0);
      expect(again.stdout).toEqual(io.stdout);
      // Only found or created: nothing was backed up.
      const list = capture();
      expect(await xsmeta(['list'], list)).toBe(1);
      expect(list.stderr.join('\n')).toMatch(/NO_BACKUPS/);
    });
    await p.close();
  }, 60_000);

  it('the SR metadata names every SR, ISO SRs too (python3/libexec/backup-sr-metadata.py)', async () => {
    const records = new Map<string, R>([
      [
        'OpaqueRef:a',
        {
          uuid: 'sr-a',
          name_label: 'NFS',
          name_description: '',
          type: 'nfs',
          content_type: 'user',
        },
      ],
      [
        'OpaqueRef:b',
        {
          uuid: 'sr-b',
          name_label: 'ISOs',
          name_description: 'install media',
          type: 'iso',
          content_type: 'iso',
        },
      ],
    ]);
    const vdis = new Map<string, R>([
      [
        'OpaqueRef:v',
        {
          uuid: 'vdi-iso',
          name_label: 'debian.iso',
          name_description: '',
          SR: 'OpaqueRef:b',
          read_only: true,
        },
      ],
    ]);
    const xapi = {
      // The listing of only some fields (getAllRecordsFields): the records cut down.
      getAllRecordsFields: async (cls: string, fields: string[]) =>
        new Map(
          [...(cls === 'SR' ? records : vdis)].map(([ref, r]) => [
            ref,
            Object.fromEntries(fields.filter((f) => f in r).map((f) => [f, r[f]])),
          ]),
        ),
    } as unknown as XapiClient;
    const srs = await new XapiPool(xapi, {} as never).srs();
    expect(srs.map((s) => s.uuid)).toEqual(['sr-a', 'sr-b']);
    expect(srs[1]!.vdis.map((v) => v.name)).toEqual(['debian.iso']);
  });

  it('the console offers for a new backup disk only SRs that allow vdi_create (XSFeatureDRBackup.py)', () => {
    expect(allowsNewDisk({ allowed_operations: ['scan', 'vdi_create', 'vdi_destroy'] })).toBe(true);
    expect(allowsNewDisk({ allowed_operations: ['scan', 'vdi_destroy'] })).toBe(false);
    expect(allowsNewDisk({})).toBe(false);
  });
});

describe('a scheduled backup that leaves a busy VM out', () => {
  it('stays visible: exit 4 and the VMs named (as backup-metadata-cron reports a non-zero exit)', async () => {
    const p = await pool({ vms: 3 });
    const cron = await mkdtemp(join(tmpdir(), 'xsmeta-cron-'));
    const real = retryTiming.sleep;
    retryTiming.sleep = async () => {};
    try {
      await withEnv({ ...p.env, XSMETA_CRON_DIR: cron }, async () => {
        const set = capture();
        expect(await xsmeta(['schedule', 'daily', '--json'], set)).toBe(0);
        const slot = new Date((JSON.parse(set.stdout[0]!) as { nextRunAt: string }).nextRunAt);
        p.sim.faults.set({
          fail: [{ match: '/export_metadata', code: 'OTHER_OPERATION_IN_PROGRESS' }],
        });
        const io = capture();
        expect(await runDue(resolveSettings({}), io, () => new Date(slot.getTime() + 60_000))).toBe(
          4,
        );
        p.sim.faults.clear();
        expect(io.stderr.filter((l) => l.startsWith('Left out ')).length).toBeGreaterThan(0);
        expect(io.stderr.at(-1)).toMatch(/is partial/);
      });
    } finally {
      retryTiming.sleep = real;
      await rm(cron, { recursive: true, force: true });
    }
    await p.close();
  }, 60_000);
});
