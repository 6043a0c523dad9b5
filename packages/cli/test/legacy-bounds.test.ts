import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { legacyMaxVms } from '../src/legacy.js';
import { capture, pool, withEnv } from './support.js';

it('a legacy backup with more VMs than the documented maximum is refused before anything is imported', async () => {
  expect(legacyMaxVms({})).toBe(5000);
  const p = await pool({ vms: 3, srs: 1 });
  const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
  const vms = [
    ...(
      await x.getAllRecords<{ uuid: string; is_control_domain: boolean; is_a_template: boolean }>(
        'VM',
      )
    ).values(),
  ].filter((v) => !v.is_control_domain && !v.is_a_template);
  const [srRec] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
  const sr = srRec!.uuid;
  // The old script's layout with the pool's real exports, as an ext3 image on the SR.
  const tree = mkdtempSync(join(tmpdir(), 'legacy-tree-'));
  const date = '2024-05-06-07-08-09';
  writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
  mkdirSync(join(tree, 'metadata', date, 'all'), { recursive: true });
  for (const v of vms)
    writeFileSync(
      join(tree, 'metadata', date, 'all', `${v.uuid}.vmmeta`),
      await x.exportMetadata({ uuid: v.uuid }),
    );
  const vdi = randomUUID();
  execFileSync(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t',
      'ext3',
      '-b',
      '1024',
      '-d',
      tree,
      join(p.dir, 'sim', 'sr', sr, `${vdi}.img`),
      '8M',
    ],
    { stdio: 'ignore' },
  );
  rmSync(tree, { recursive: true, force: true });
  await x.call('SR.scan', await x.call<string>('SR.get_by_uuid', sr));
  await x.logout();
  await withEnv({ ...p.env, XSMETA_LEGACY_MAX_VMS: String(vms.length - 1) }, async () => {
    const io = capture();
    expect(await xeRestore(['-o', '-u', sr, '-x', vdi, '-y', '-f'], io)).toBe(1);
    expect(io.stderr.join('\n')).toMatch(
      new RegExp(
        `LEGACY_LIMIT: the legacy backup of ${date} holds ${vms.length} VM exports, more than the ${vms.length - 1} xsmeta reads from one backup: nothing was restored`,
      ),
    );
    expect(io.stdout.filter((l) => l.startsWith('Restored '))).toEqual([]);
  });
  // Within the bound, the same disk restores.
  await withEnv({ ...p.env, XSMETA_LEGACY_MAX_VMS: String(vms.length) }, async () => {
    const io = capture();
    expect(await xeRestore(['-o', '-u', sr, '-x', vdi, '-y', '-n', '-f'], io)).toBe(0);
    expect(io.stdout.at(-1)).toBe(`Restored ${vms.length} VM(s), and 0 error(s)`);
  });
  await p.close();
});
