import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { legacyMaxVms } from '../src/adapters/legacy-disk.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { scannedLegacyImage, vmsAndSr } from './legacy-image.js';
import { capture, pool, withEnv } from './support.js';

it('a legacy backup with more VMs than the documented maximum is refused before anything is imported', async () => {
  expect(legacyMaxVms({})).toBe(5000);
  const p = await pool({ vms: 3, srs: 1 });
  const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
  const { vms, sr } = await vmsAndSr(x);
  // The old script's layout with the pool's real exports, as an ext3 image on the SR.
  const date = '2024-05-06-07-08-09';
  const vdi = randomUUID();
  await scannedLegacyImage(x, vms, sr, date, join(p.dir, 'sim', 'sr', sr, `${vdi}.img`));
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
