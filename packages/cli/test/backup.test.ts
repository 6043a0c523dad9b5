import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { describe, expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, devicesLeft, pool, relay, withEnv } from './support.js';

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('backup, end to end against the simulator', () => {
  it('exit 3 without -c; then a VDI with the deterministic uuid, label and size; 27 backups keep 25', async () => {
    const p = await pool();
    await withEnv(p.env, async () => {
      const io = capture();
      expect(await xeBackup([], io)).toBe(3);
      expect(io.stderr.join('\n')).toMatch(/BACKUP_VDI_MISSING: .* -c/);
      expect(await xeBackup(['-c'], capture())).toBe(0);
      const xapi = await XapiClient.connect({
        url: p.env.XSMETA_URL!,
        username: 'root',
        password: 'xsmeta',
      });
      const [poolRec] = (await xapi.getAllRecords<{ default_SR: string }>('pool')).values();
      const srUuid = await xapi.call<string>('SR.get_uuid', poolRec!.default_SR);
      const vdi = await xapi.getRecord<{ uuid: string; name_label: string; virtual_size: number }>(
        'VDI',
        await xapi.call<string>('VDI.get_by_uuid', backupVdiUuid(srUuid)),
      );
      expect(vdi.name_label).toBe('Pool Metadata Backup');
      expect(Number(vdi.virtual_size)).toBe(500 * 1024 * 1024);
      for (let i = 0; i < 26; i++) expect(await xeBackup([], capture())).toBe(0);
      const list = capture();
      expect(await xsmeta(['list', '--json'], list)).toBe(0);
      expect(list.stdout).toHaveLength(1);
      const rows = JSON.parse(list.stdout[0]!) as {
        seq: number;
        date: string;
        vmCount: number;
        templateCount: number;
        rawBytes: number;
        storedBytes: number;
      }[];
      expect(rows).toHaveLength(25);
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 25 }, (_, i) => 27 - i));
      expect(new Set(rows.map((r) => r.date)).size).toBe(25);
      expect([...rows.map((r) => r.date)].sort().reverse()).toEqual(rows.map((r) => r.date));
      expect(rows[0]).toMatchObject({ vmCount: 8 });
      expect(Object.keys(rows[0]!).sort()).toEqual([
        'createdAt',
        'date',
        'formatVersion',
        'poolUuid',
        'rawBytes',
        'seq',
        'srUuid',
        'storedBytes',
        'templateCount',
        'vmCount',
      ]);
      expect(rows[0]!.storedBytes / rows[0]!.rawBytes).toBeLessThan(0.15);
      // No VBD is left on the control domain, no device link left behind.
      const vbds = [
        ...(await xapi.getAllRecords<{ other_config: Record<string, string> }>('VBD')).values(),
      ];
      expect(vbds.filter((v) => v.other_config['xsmeta-attach'])).toHaveLength(0);
      expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
      await xapi.logout();
    });
    await p.close();
  }, 300_000);

  it('verify is clean, then names the one record whose byte was flipped', async () => {
    const p = await pool();
    await withEnv(p.env, async () => {
      for (let i = 0; i < 3; i++) expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      const ok = capture();
      expect(await xsmeta(['verify', '--json'], ok)).toBe(0);
      expect(JSON.parse(ok.stdout[0]!)).toEqual({
        ok: true,
        records: [
          { seq: 3, ok: true },
          { seq: 2, ok: true },
          { seq: 1, ok: true },
        ],
      });
      const img = readdirSync(join(p.dir, 'sim', 'sr'), { recursive: true, withFileTypes: false })
        .map((f) => join(p.dir, 'sim', 'sr', String(f)))
        .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
      // Record 2 starts one block after record 1 ends; flip a byte inside its payload.
      const listed = capture();
      await xsmeta(['list', '--json'], listed);
      const rows = JSON.parse(listed.stdout[0]!) as { seq: number; storedBytes: number }[];
      const first = rows.find((r) => r.seq === 1)!;
      const offset = 256 * 1024 + Math.ceil((64 + first.storedBytes) / 4096) * 4096 + 64 + 100;
      const fh = await open(img, 'r+');
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, offset);
      b[0]! ^= 0x40;
      await fh.write(b, 0, 1, offset);
      await fh.close();
      const bad = capture();
      expect(await xsmeta(['verify', '--json'], bad)).toBe(1);
      const rep = JSON.parse(bad.stdout[0]!) as {
        ok: boolean;
        records: { seq: number; ok: boolean; error?: string }[];
      };
      expect(rep.ok).toBe(false);
      expect(rep.records.filter((r) => !r.ok).map((r) => r.seq)).toEqual([2]);
      expect(rep.records.find((r) => r.seq === 2)!.error).toMatch(/checksum/);
    });
    await p.close();
  }, 300_000);

  it('a call failing mid-backup: clear error, disk unchanged, VBD cleaned up, failure event recorded', async () => {
    const p = await pool();
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      const img = readdirSync(join(p.dir, 'sim', 'sr'), { recursive: true })
        .map((f) => join(p.dir, 'sim', 'sr', String(f)))
        .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
      const before = sha(img);
      for (const fault of [
        // The first export request is the one for every VM (all=true); refused, the backup
        // falls back to per-VM exports, which fail too. (A failed export GET is asked once more
        // with a task, for the pool's error, and per-VM exports run in parallel: so every
        // export request fails here rather than a counted few.)
        { match: '/export_metadata', code: 'INTERNAL_ERROR' },
        { match: 'VBD.plug', code: 'SR_BACKEND_FAILURE_47', times: 1 },
      ]) {
        p.sim.faults.set({ fail: [fault] });
        const io = capture();
        expect(await xsmeta(['backup'], io)).toBe(1);
        expect(io.stderr).toHaveLength(1);
        expect(io.stderr[0]).toContain(fault.code);
        expect(sha(img)).toBe(before);
        expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
      }
      p.sim.faults.clear();
      const xapi = await XapiClient.connect({
        url: p.env.XSMETA_URL!,
        username: 'root',
        password: 'xsmeta',
      });
      const vbds = [
        ...(await xapi.getAllRecords<{ other_config: Record<string, string> }>('VBD')).values(),
      ];
      expect(vbds.filter((v) => v.other_config['xsmeta-attach'])).toHaveLength(0);
      await xapi.logout();
      const h = capture();
      expect(await xsmeta(['history', '--json'], h)).toBe(0);
      // Newest first, one entry per run.
      const runs = JSON.parse(h.stdout[0]!) as { outcome: string; code: string | null }[];
      expect(runs.filter((r) => r.outcome === 'FAILED').map((r) => r.code)).toEqual([
        'SR_BACKEND_FAILURE_47',
        'INTERNAL_ERROR',
      ]);
      expect(runs.filter((r) => r.outcome === 'SUCCESS')).toHaveLength(1);
      // Both failed runs took the SR's lock (the folder exists) and gave it back.
      expect(readdirSync(join(p.env.XSMETA_STATE_DIR!, 'locks'))).toEqual([]);
    });
    await p.close();
  }, 300_000);

  it('a second backup of the same SR while one runs fails at once', async () => {
    const p = await pool({ vms: 40 });
    const locks = join(p.env.XSMETA_STATE_DIR!, 'locks');
    const locked = () => existsSync(locks) && readdirSync(locks).length > 0;
    // The first run talks to the pool through a relay that holds it still once it has the lock.
    const hold = await relay(p.env.XSMETA_URL!, locked);
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      expect(locked()).toBe(false);
      process.env.XSMETA_URL = hold.url;
      const first = xsmeta(['backup'], capture());
      await hold.held;
      process.env.XSMETA_URL = p.env.XSMETA_URL!;
      const second = capture();
      expect(await xsmeta(['backup'], second)).toBe(1);
      expect(second.stderr[0]).toMatch(/BACKUP_LOCKED: another backup of SR .* is running/);
      hold.release();
      expect(await first).toBe(0);
      expect(locked()).toBe(false);
    });
    await hold.close();
    await p.close();
  }, 300_000);

  it('clear one-line errors for a missing URL and bad usage', async () => {
    await withEnv({ XSMETA_URL: '', XSMETA_STATE_DIR: '/tmp/xsmeta-unused' }, async () => {
      delete process.env.XSMETA_URL;
      const io = capture();
      expect(await xsmeta(['list'], io)).toBe(1);
      expect(io.stderr).toEqual([
        'xsmeta: NO_URL: no pool to talk to: set --url https://POOL-MASTER or XSMETA_URL',
      ]);
      const bad = capture();
      expect(await xsmeta(['backup', '--bogus'], bad)).toBe(2);
      const k = capture();
      expect(await xeBackup(['-k', 'zero'], k)).toBe(2);
      expect(k.stderr).toEqual([
        "xe-backup-metadata: option '-k <N>' argument 'zero' is invalid. the number of backups to keep must be 1..100, not zero (see 'xe-backup-metadata --help')",
      ]);
    });
  });
});
