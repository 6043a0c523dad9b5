// Remote mode: the commands from a machine that is not a pool host (a URL and no inventory),
// with no VBD and no device folder at all, and the writer lock on the VDI's other_config.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { backupVdiUuid, type PoolRecord, XapiClient } from '@xsmeta/xapi';
import { describe, expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { LOCK_KEY, takeVdiLock } from '../src/remote/lock.js';
import { capture, pool, withEnv } from './support.js';

/** The simulator's environment made remote: no inventory, no device folder, no socket. */
function remoteEnv(env: Record<string, string>, dir: string): Record<string, string> {
  return {
    ...env,
    XSMETA_INVENTORY: join(dir, 'no-inventory'),
    XSMETA_DEV_DIR: join(dir, 'no-dev'),
    XSMETA_SOCKET: join(dir, 'no-socket'),
  };
}

describe('remote mode', () => {
  it('backs up, lists, verifies and restores with no VBD and no device folder', async () => {
    const p = await pool({ vms: 4, srs: 1 });
    const log: string[] = [];
    const env = remoteEnv(p.env, p.dir);
    await withEnv(env, async () => {
      for (let i = 0; i < 3; i++) expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      const list = capture();
      expect(await xsmeta(['list', '--json'], list)).toBe(0);
      const rows = JSON.parse(list.stdout[0]!) as { seq: number; vmCount: number }[];
      expect(rows.map((r) => r.seq)).toEqual([3, 2, 1]);
      expect(rows[0]!.vmCount).toBe(4);
      const v = capture();
      expect(await xsmeta(['verify', '--json'], v)).toBe(0);
      expect(JSON.parse(v.stdout[0]!)).toMatchObject({ ok: true });
      // repair reads the ring through the same device as the other commands.
      const rep = capture();
      expect(await xsmeta(['repair', '--json'], rep), rep.stderr.join('\n')).toBe(0);
      expect(JSON.parse(rep.stdout[0]!)).toMatchObject({ clean: true });
      const r = capture();
      expect(await xsmeta(['restore', '--dry-run', '--force', '--json'], r)).toBe(0);
      expect(JSON.parse(r.stdout[0]!)).toMatchObject({ errors: 0 });
      log.push(...r.stderr);
      // Off-site copies work from here too.
      const c = capture();
      expect(await xsmeta(['copy', '--to', join(p.dir, 'offsite')], c)).toBe(0);
      expect(c.stdout).toEqual(['Copied 3 backup(s), 0 already there, 0 old copy(ies) removed']);
    });
    expect(existsSync(env.XSMETA_DEV_DIR!)).toBe(false);
    const xapi = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const vbds = [...(await xapi.getAllRecords<{ VDI: string }>('VBD')).values()];
    const [poolRec] = (await xapi.getAllRecords<PoolRecord>('pool')).values();
    const sr = await xapi.call<string>('SR.get_uuid', poolRec!.default_SR);
    const vdi = await xapi.call<string>('VDI.get_by_uuid', backupVdiUuid(sr));
    expect(vbds.filter((b) => b.VDI === vdi)).toEqual([]);
    // The lock is released after each backup.
    expect(
      (await xapi.call<Record<string, string>>('VDI.get_other_config', vdi))[LOCK_KEY],
    ).toBeUndefined();
    await xapi.logout();
    await p.close();
  }, 120_000);

  it('two writers race for the lock: exactly one gets it; a backup meets a held lock with BACKUP_LOCKED', async () => {
    const p = await pool({ vms: 2, srs: 1 });
    const env = remoteEnv(p.env, p.dir);
    await withEnv(env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    });
    const a = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const b = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const [poolRec] = (await a.getAllRecords<PoolRecord>('pool')).values();
    const sr = await a.call<string>('SR.get_uuid', poolRec!.default_SR);
    const uuid = backupVdiUuid(sr);
    const vdi = await a.call<string>('VDI.get_by_uuid', uuid);
    // Both add the key at once; xapi lets exactly one add succeed (MAP_DUPLICATE_KEY).
    const results = await Promise.allSettled([
      takeVdiLock(a, vdi, uuid),
      takeVdiLock(b, vdi, uuid),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'BACKUP_LOCKED' });
    // A held lock (this process is alive) stops a backup, remote or not, before it writes.
    await withEnv(env, async () => {
      const io = capture();
      expect(await xsmeta(['backup'], io)).toBe(1);
      expect(io.stderr.join('\n')).toMatch(/BACKUP_LOCKED: the backup VDI .* is being written by/);
    });
    await withEnv(p.env, async () => {
      const io = capture();
      expect(await xsmeta(['backup'], io)).toBe(1);
      expect(io.stderr.join('\n')).toMatch(/BACKUP_LOCKED/);
    });
    await (won[0] as PromiseFulfilledResult<() => Promise<void>>).value();
    await withEnv(env, async () => {
      expect(await xsmeta(['backup'], capture())).toBe(0);
      const list = capture();
      expect(await xsmeta(['list', '--json'], list)).toBe(0);
      expect(JSON.parse(list.stdout[0]!)).toHaveLength(2);
    });
    // A lock whose time is up is taken over.
    const old = await takeVdiLock(a, vdi, uuid, { now: () => Date.now() - 3_600_000 });
    void old;
    const fresh = await takeVdiLock(b, vdi, uuid);
    await fresh();
    await a.logout();
    await b.logout();
    await p.close();
  }, 120_000);
});
