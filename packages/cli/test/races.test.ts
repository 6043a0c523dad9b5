import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { newDom0Vbd } from '../../../test-support/xapi.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

it('a VBD that vanishes between the sweep listing it and reading it is gone, not an error (backup and list)', async () => {
  const p = await pool({ vms: 3, srs: 1 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const [sr] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
    const vdi = await x.call<string>('VDI.get_by_uuid', backupVdiUuid(sr!.uuid));
    // A VBD a dead run left: another run's sweep removes it while ours reads it, and xapi
    // answers the read of a destroyed object with HANDLE_INVALID.
    const stale = () =>
      newDom0Vbd(x, vdi, {
        mode: 'RO',
        otherConfig: {
          'xsmeta-attach': 'true',
          'xsmeta-owner': JSON.stringify({
            host: hostname(),
            pid: spawnSync(process.execPath, ['-e', '0']).pid,
          }),
        },
      });
    for (const cmd of ['backup', 'list']) {
      await stale();
      p.sim.faults.set({ fail: [{ match: 'VBD.get_record', code: 'HANDLE_INVALID', times: 1 }] });
      const io = capture();
      expect(await xsmeta([cmd], io), io.stderr.join('\n')).toBe(0);
      p.sim.faults.clear();
    }
    // What was really left is removed by the next run.
    expect(await xsmeta(['list'], capture())).toBe(0);
    expect(await x.call<string[]>('VDI.get_VBDs', vdi)).toEqual([]);
    await x.logout();
  });
  await p.close();
});
