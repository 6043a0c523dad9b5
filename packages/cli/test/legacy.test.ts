import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { BACKUP_FORMAT_VERSION } from '@xsmeta/core';
import { backupVdiUuid } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { expect, it } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { connectionFlags, resolveSettings } from '../src/config.js';
import { consoleServices } from '../src/console.js';
import { countVdis, legacyImage, poolVms, sha, type Vm, xapiOf } from './legacy-image.js';
import { capture, pool, withEnv } from './support.js';

// The old scripts' disks are made with mke2fs -d and looked into with debugfs.
requireTools('mke2fs', 'debugfs');

it('restores from a legacy ext3 backup VDI with -o (never mounted); two candidates need -x; a new-format SR needs -o -x', async () => {
  const p = await pool({ vms: 5, srs: 1 });
  const x = await xapiOf(p.sim.url);
  const vms = await poolVms(x);
  const [srRec] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
  const sr = srRec!.uuid;
  // The layout the old script wrote, with real metadata exports, as an ext3 image.
  const date = '2024-05-06-07-08-09';
  const legacyVdi = randomUUID();
  // One forged link among them: pointing out of the backup, it is skipped and said so.
  const forged = '11111111-1111-4111-8111-111111111111';
  const { img, tree } = await legacyImage(
    x,
    vms,
    sr,
    [date],
    join(p.dir, 'sim', 'sr', sr, `${legacyVdi}.img`),
    1024,
    (t) => symlinkSync('/etc/shadow', join(t, 'metadata', date, 'by-sr', sr, `${forged}.vmmeta`)),
  );
  await x.logout();
  await p.sim.close();
  // The disaster: a new pool; SR.scan finds the legacy VDI among the SR's disks.
  const sim = await startSimulator({ stateDir: join(p.dir, 'sim'), freshPool: true });
  const env = { ...sim.env, XSMETA_STATE_DIR: p.env.XSMETA_STATE_DIR! };
  await withEnv(env, async () => {
    const probe = capture();
    expect(await xeRestore(['-o', '-u', sr, '-p'], probe)).toBe(0);
    expect(probe.stdout).toEqual([legacyVdi]);
    const list = capture();
    expect(await xeRestore(['-o', '-u', sr, '-l'], list)).toBe(0);
    expect(list.stdout).toEqual([date]);
    // Converting would make a scanned disk's content trusted backups: it must be named.
    const scanned = capture();
    expect(await xsmeta(['legacy', 'convert', '--sr', sr], scanned)).toBe(1);
    expect(scanned.stderr[0]).toMatch(new RegExp(`name it with --vdi ${legacyVdi}`));
    const dry = capture();
    expect(await xeRestore(['-o', '-u', sr, '-n', '-y'], dry)).toBe(0);
    expect(dry.stdout.at(-1)).toBe(`Restored ${vms.length} VM(s), and 0 error(s)`);
    expect(dry.stderr).toContain(
      `skipped /metadata/${date}/by-sr/${sr}/${forged}.vmmeta: the link points at "/etc/shadow", not ../../all/${forged}.vmmeta`,
    );
    // The console's legacy item runs the same rule and restore (the services it is given).
    const con = consoleServices(resolveSettings(connectionFlags({})));
    expect(await con.legacyStatus(sr)).toEqual({ available: true });
    expect(await con.listLegacyBackups(sr)).toEqual([{ date, vmCount: vms.length }]);
    const seen: string[] = [];
    const sum = await con.restoreLegacy(
      { srUuid: sr, date, mode: 'all', dryRun: true },
      (ev) => seen.push(ev.vmUuid),
      new AbortController().signal,
    );
    expect(sum).toEqual({
      restored: vms.length,
      errors: [],
      notes: [
        `skipped /metadata/${date}/by-sr/${sr}/${forged}.vmmeta: the link points at "/etc/shadow", not ../../all/${forged}.vmmeta`,
      ],
    });
    expect(seen.sort()).toEqual(vms.map((v) => v.uuid).sort());
    const real = capture();
    expect(await xeRestore(['-o', '-u', sr, '-y', '-m', 'sr'], real)).toBe(0);
    const c = await xapiOf(sim.url);
    const back = [...(await c.getAllRecords<Vm>('VM')).values()].filter(
      (v) => !v.is_control_domain,
    );
    expect(back.map((v) => `${v.uuid} ${v.name_label}`).sort()).toEqual(
      vms.map((v) => `${v.uuid} ${v.name_label}`).sort(),
    );
    await c.logout();
    // A second disk that looks like a backup (any guest can write one): refused, both named.
    copyFileSync(img, join(p.dir, 'sim', 'sr', sr, `${randomUUID()}.img`));
    const c2 = await xapiOf(sim.url);
    const srRef = await c2.call<string>('SR.get_by_uuid', sr);
    await c2.call('SR.scan', srRef);
    // A read-only VDI holding the same layout is never a candidate: the old scripts wrote theirs.
    const ro = await c2.call<string>('VDI.create', {
      name_label: 'read-only copy',
      name_description: '',
      SR: srRef,
      virtual_size: String(statSync(img).size),
      type: 'user',
      sharable: false,
      read_only: true,
      other_config: {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    });
    copyFileSync(
      img,
      join(p.dir, 'sim', 'sr', sr, `${await c2.call<string>('VDI.get_uuid', ro)}.img`),
    );
    await c2.logout();
    // -p lists every candidate (how the administrator finds the one to name with -x) ...
    const probe2 = capture();
    expect(await xeRestore(['-o', '-u', sr, '-p'], probe2)).toBe(0);
    expect(probe2.stdout).toHaveLength(2);
    expect(probe2.stdout).toContain(legacyVdi);
    // ... converting never trusts a scan, even of one candidate ...
    const conv = capture();
    expect(await xsmeta(['legacy', 'convert', '--sr', sr], conv)).toBe(1);
    expect(conv.stderr[0]).toMatch(/LEGACY_AMBIGUOUS/);
    // ... and a restore with several candidates is refused, naming them.
    const two = capture();
    expect(await xeRestore(['-o', '-u', sr, '-n', '-y'], two)).toBe(1);
    expect(two.stderr[0]).toMatch(/2 VDIs on SR .* look like legacy backups .*-x VDI_UUID/);
    expect(await xeRestore(['-o', '-x', legacyVdi, '-u', sr, '-n', '-y', '-f'], capture())).toBe(0);
    // Once the SR holds a new-format backup VDI, legacy restore needs -o -x (XenServer's rule).
    expect(await xeBackup(['-c', '-u', sr], capture())).toBe(0);
    const rule = capture();
    expect(await xeRestore(['-o', '-u', sr, '-n', '-y'], rule)).toBe(1);
    expect(rule.stderr[0]).toMatch(/holds a backup VDI of the new format/);
    expect(await xeRestore(['-o', '-x', legacyVdi, '-u', sr, '-n', '-y', '-f'], capture())).toBe(0);
    const status = await con.legacyStatus(sr);
    expect(status.available).toBe(false);
    expect(status.reason).toMatch(/new format/);
  });
  await sim.close();
  rmSync(tree, { recursive: true, force: true });
  await p.close();
}, 300_000);

it("upstream's ext3 disk on the SR's own backup VDI: backup refuses to format it; legacy convert keeps a verified copy, then fills the ring with the old dates", async () => {
  const p = await pool({ vms: 4, srs: 1 });
  const x = await xapiOf(p.sim.url);
  const vms = await poolVms(x);
  const [srRec] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
  const sr = srRec!.uuid;
  // Upstream's xe-backup-metadata (after XSA-459) writes its ext3 to the deterministic VDI
  // (4 KiB blocks here, as mkfs.ext3 makes on a disk of 512 MiB or more; the test above: 1 KiB).
  const own = backupVdiUuid(sr);
  const dates = ['2024-01-07-02-00-00', '2024-02-04-02-00-00', '2024-03-03-02-00-00'];
  const { img, tree, poolUuid } = await legacyImage(
    x,
    vms,
    sr,
    dates,
    join(p.dir, 'sim', 'sr', sr, `${own}.img`),
    4096,
  );
  expect(
    execFileSync('dumpe2fs', ['-h', img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
  ).toMatch(/Block size:\s+4096/);
  // A guest's forged disk on the same SR: the own VDI is trusted by its uuid, no scan is made.
  copyFileSync(img, join(p.dir, 'sim', 'sr', sr, `${randomUUID()}.img`));
  await x.call('SR.scan', await x.call<string>('SR.get_by_uuid', sr));
  await x.logout();
  const original = sha(img);
  await withEnv(p.env, async () => {
    const refused = capture();
    expect(await xeBackup(['-u', sr], refused)).toBe(1);
    expect(refused.stderr[0]).toMatch(/LEGACY_ON_BACKUP_VDI: .*xsmeta legacy convert/);
    expect(sha(img)).toBe(original);
    // The console: its ring items point to its legacy item, which reads this disk (no scan).
    const con = consoleServices(resolveSettings(connectionFlags({})));
    await expect(con.listBackups(sr)).rejects.toThrow(
      /old scripts \(ext3\).*"Restore Virtual Machine Metadata from Legacy Backup"/,
    );
    await expect(con.backup(sr, () => {}, new AbortController().signal)).rejects.toMatchObject({
      code: 'LEGACY_ON_BACKUP_VDI',
      message: expect.stringMatching(/old scripts \(ext3\), which xsmeta never overwrites/),
    });
    expect(sha(img)).toBe(original);
    expect(await con.legacyStatus(sr)).toEqual({ available: true });
    expect(await con.listLegacyBackups(sr)).toEqual(
      [...dates].reverse().map((date) => ({ date, vmCount: vms.length })),
    );
    // Without the opt-in the legacy disk is not read at all.
    const noOptIn = capture();
    expect(await xeRestore(['-u', sr, '-l'], noOptIn)).toBe(1);
    expect(noOptIn.stderr[0]).toMatch(/LEGACY_ON_BACKUP_VDI/);
    const list = capture();
    expect(await xeRestore(['-o', '-u', sr, '-l'], list)).toBe(0);
    expect(list.stdout).toEqual([...dates].reverse());
    // -d picks an older legacy backup than the newest.
    const older = capture();
    expect(await xeRestore(['-o', '-u', sr, '-d', dates[0]!, '-n', '-y', '-f'], older)).toBe(0);
    expect(older.stdout.at(-1)).toBe(`Restored ${vms.length} VM(s), and 0 error(s)`);
    const asked = capture();
    expect(await xsmeta(['history', '--kind', 'restore', '--json'], asked)).toBe(0);
    const newest = JSON.parse(asked.stdout[0]!)[0] as { runId: string };
    const run = capture();
    expect(await xsmeta(['history', '--run', newest.runId, '--json'], run)).toBe(0);
    expect(JSON.parse(run.stdout[0]!)[0]).toMatchObject({
      type: 'RestoreRequested',
      data: { date: dates[0], legacy: true, dryRun: true },
    });
    expect(sha(img)).toBe(original);
    const ll = capture();
    expect(await xsmeta(['legacy', 'list', '--sr', sr, '--json'], ll)).toBe(0);
    expect(JSON.parse(ll.stdout[0]!)).toMatchObject({
      vdiUuid: own,
      backups: [...dates].reverse().map((date) => ({ date, vmCount: vms.length })),
      skipped: [],
    });

    // A copy that cannot be finished is removed, the legacy disk is untouched, no VBD is left.
    const vdisBefore = (await xapiOf(p.sim.url).then(countVdis))[0];
    p.sim.faults.set({
      fail: [{ match: 'VDI.set_name_label', code: 'SR_BACKEND_FAILURE', times: 1 }],
    });
    const failed = capture();
    expect(await xsmeta(['legacy', 'convert', '--sr', sr], failed)).toBe(1);
    expect(failed.stderr[0]).toMatch(/SR_BACKEND_FAILURE/);
    p.sim.faults.clear();
    const [vdisAfter, vbds] = await xapiOf(p.sim.url).then(countVdis);
    expect(vdisAfter).toBe(vdisBefore);
    expect(vbds).toBe(0);
    expect(sha(img)).toBe(original);

    const conv = capture();
    expect(await xsmeta(['legacy', 'convert', '--sr', sr, '--json'], conv)).toBe(0);
    const r = JSON.parse(conv.stdout[0]!);
    expect(r.converted.map((c: { date: string }) => c.date)).toEqual(dates);
    expect(r.skipped).toEqual([]);
    expect(r.notes).toEqual([]);
    // The kept copy is the legacy disk byte for byte; the backup VDI now holds the ring.
    expect(sha(join(p.dir, 'sim', 'sr', sr, `${r.keptCopyVdiUuid}.img`))).toBe(original);
    const xc = await xapiOf(p.sim.url);
    const kept = await xc.getRecord<{ name_label: string }>(
      'VDI',
      await xc.call<string>('VDI.get_by_uuid', r.keptCopyVdiUuid),
    );
    expect(kept.name_label).toBe('Pool Metadata Backup (legacy ext3, kept by xsmeta)');
    await xc.logout();
    const listed = capture();
    expect(await xsmeta(['list', '--sr', sr, '--json'], listed)).toBe(0);
    const rows = JSON.parse(listed.stdout[0]!);
    expect(rows.map((l: { date: string }) => l.date)).toEqual([...dates].reverse());
    expect(rows[0]).toMatchObject({
      // From the pool database dump that the old script wrote in the same run.
      poolUuid,
      formatVersion: BACKUP_FORMAT_VERSION,
      vmCount: vms.filter((v) => !v.is_a_template).length,
      templateCount: vms.filter((v) => v.is_a_template).length,
      createdAt: '2024-03-03T02:00:00.000Z',
    });
    const text = capture();
    expect(await xsmeta(['list', '--sr', sr], text)).toBe(0);
    expect(text.stdout[0]).toMatch(/^2024-03-03-02-00-00 .*\(converted from a legacy backup\)$/);
    const verify = capture();
    expect(await xsmeta(['verify', '--sr', sr], verify)).toBe(0);

    // A new backup lists first (by date), though the converted ones came later in the ring.
    expect(await xsmeta(['backup', '--sr', sr], capture())).toBe(0);
    const after = capture();
    expect(await xsmeta(['list', '--sr', sr, '--json'], after)).toBe(0);
    const afterRows = JSON.parse(after.stdout[0]!);
    expect(afterRows.slice(1).map((l: { date: string }) => l.date)).toEqual([...dates].reverse());
    expect(afterRows[0].date > dates[2]!).toBe(true);
    // Converting again (the SR now holds a ring, so the copy must be named): nothing twice.
    const again = capture();
    expect(
      await xsmeta(['legacy', 'convert', '--sr', sr, '--vdi', r.keptCopyVdiUuid, '--json'], again),
    ).toBe(0);
    const r2 = JSON.parse(again.stdout[0]!);
    expect(r2.converted).toEqual([]);
    expect(r2.skipped.map((k: { date: string }) => k.date)).toEqual(dates);
    // ... and without --vdi, XenServer's rule: the SR holds a new-format backup VDI.
    const rule = capture();
    expect(await xsmeta(['legacy', 'list', '--sr', sr], rule)).toBe(1);
    expect(rule.stderr[0]).toMatch(/LEGACY_UNAVAILABLE: .*new format/);

    const hist = capture();
    expect(await xsmeta(['history', '--kind', 'convert', '--json'], hist)).toBe(0);
    const converts = JSON.parse(hist.stdout[0]!) as { outcome: string; converted: number }[];
    // The conversion that copied the three dates, and a later one that had nothing left to do.
    expect(converts.map((c) => [c.outcome, c.converted]).slice(0, 2)).toEqual([
      ['SUCCESS', 0],
      ['SUCCESS', 3],
    ]);
  });
  // The disaster: a converted backup restores like any other, by its original date.
  await p.sim.close();
  const sim = await startSimulator({ stateDir: join(p.dir, 'sim'), freshPool: true });
  await withEnv({ ...sim.env, XSMETA_STATE_DIR: p.env.XSMETA_STATE_DIR! }, async () => {
    const real = capture();
    expect(await xeRestore(['-u', sr, '-d', dates[1]!, '-y'], real)).toBe(0);
    expect(real.stdout.at(-1)).toBe(`Restored ${vms.length} VM(s), and 0 error(s)`);
    const c = await xapiOf(sim.url);
    expect((await poolVms(c)).map((v) => v.uuid).sort()).toEqual(vms.map((v) => v.uuid).sort());
    await c.logout();
  });
  await sim.close();
  rmSync(tree, { recursive: true, force: true });
  await p.close();
}, 300_000);
