import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { capture, pool, withEnv } from './support.js';

type Vm = {
  uuid: string;
  name_label: string;
  is_a_template: boolean;
  is_control_domain: boolean;
  is_a_snapshot: boolean;
  other_config: Record<string, string>;
  VBDs: string[];
};

it('restores from a legacy ext3 backup VDI with -o (never mounted); two candidates need -x; a new-format SR needs -o -x', async () => {
  const p = await pool({ vms: 5, srs: 1 });
  const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
  const vms = [...(await x.getAllRecords<Vm>('VM')).values()].filter(
    (v) => !v.is_control_domain && !v.is_a_snapshot && v.other_config.default_template !== 'true',
  );
  const [srRec] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
  const sr = srRec!.uuid;
  // The layout the old script wrote, with real metadata exports, as an ext3 image.
  const tree = mkdtempSync(join(tmpdir(), 'legacy-tree-'));
  const date = '2024-05-06-07-08-09';
  const d = join(tree, 'metadata', date);
  mkdirSync(join(d, 'all'), { recursive: true });
  mkdirSync(join(d, 'by-sr', sr), { recursive: true });
  writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
  for (const v of vms) {
    writeFileSync(join(d, 'all', `${v.uuid}.vmmeta`), await x.exportMetadata({ uuid: v.uuid }));
    symlinkSync(`../../all/${v.uuid}.vmmeta`, join(d, 'by-sr', sr, `${v.uuid}.vmmeta`));
  }
  await x.logout();
  const legacyVdi = randomUUID();
  const img = join(p.dir, 'sim', 'sr', sr, `${legacyVdi}.img`);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext3', '-b', '1024', '-d', tree, img, '32M'], {
    stdio: 'ignore',
  });
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
    const dry = capture();
    expect(await xeRestore(['-o', '-u', sr, '-n', '-y'], dry)).toBe(0);
    expect(dry.stdout.at(-1)).toBe(`Restored ${vms.length} VM(s), and 0 error(s)`);
    const real = capture();
    expect(await xeRestore(['-o', '-u', sr, '-y', '-m', 'sr'], real)).toBe(0);
    const c = await XapiClient.connect({ url: sim.url, username: 'root', password: 'xsmeta' });
    const back = [...(await c.getAllRecords<Vm>('VM')).values()].filter(
      (v) => !v.is_control_domain,
    );
    expect(back.map((v) => `${v.uuid} ${v.name_label}`).sort()).toEqual(
      vms.map((v) => `${v.uuid} ${v.name_label}`).sort(),
    );
    await c.logout();
    // A second disk that looks like a backup (any guest can write one): refused, both named.
    copyFileSync(img, join(p.dir, 'sim', 'sr', sr, `${randomUUID()}.img`));
    const c2 = await XapiClient.connect({ url: sim.url, username: 'root', password: 'xsmeta' });
    await c2.call('SR.scan', await c2.call<string>('SR.get_by_uuid', sr));
    await c2.logout();
    const two = capture();
    expect(await xeRestore(['-o', '-u', sr, '-n', '-y'], two)).toBe(1);
    expect(two.stderr[0]).toMatch(/2 VDIs on SR .* look like legacy backups .*-x VDI_UUID/);
    expect(await xeRestore(['-o', '-x', legacyVdi, '-u', sr, '-n', '-y', '-f'], capture())).toBe(0);
    // Once the SR holds a new-format backup VDI, legacy restore needs -o -x (XenServer's rule).
    expect(await xeBackup(['-c', '-u', sr], capture())).toBe(0);
    const rule = capture();
    expect(await xeRestore(['-o', '-u', sr, '-n', '-y'], rule)).toBe(1);
    expect(rule.stderr[0]).toMatch(/holds a backup VDI of the new format/);
  });
  await sim.close();
  rmSync(tree, { recursive: true, force: true });
  await p.close();
}, 90_000);
