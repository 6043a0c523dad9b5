// Remote mode (issue 25): bytes moved through XAPI's raw-VDI handlers by `list`, `verify` and a
// backup on a full ring, against a whole-disk transfer (what a reader without the vhd format's
// sparseness, or without stopping early, would move). Needs the packages built.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileDevice, Ring } from '@xsmeta/vdi-store';
import { XapiClient } from '@xsmeta/xapi';
import { startSimulator } from '../apps/xapi-sim/dist/index.js';
import { RemoteDevice } from '../packages/cli/dist/remote/device.js';
import { row, runIfMain } from './lib.mjs';

const MiB = 1024 * 1024;
const SIZE = 500 * MiB; // the size xe-backup-metadata and xsmeta give the backup VDI
const RECORD = 19 * MiB;
const COUNT = 25;

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-remote-'));
  const sim = await startSimulator({ stateDir: dir, vms: 2, srs: 1, seed: 1 });
  const xapi = await XapiClient.connect({ url: sim.url, username: 'root', password: 'xsmeta' });
  const rows = [];
  try {
    const [pool] = (await xapi.getAllRecords('pool')).values();
    const ref = await xapi.call('VDI.create', {
      name_label: 'bench',
      name_description: '',
      SR: pool.default_SR,
      virtual_size: SIZE,
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    });
    const vdi = await xapi.getRecord('VDI', ref);
    const sr = await xapi.getRecord('SR', vdi.SR);
    // Fill the ring on the image directly (fast), incompressible records, every slot used.
    const local = await openFileDevice(join(dir, 'sr', sr.uuid, `${vdi.uuid}.img`));
    const ring = await Ring.format(local, { vdiUuid: vdi.uuid, srUuid: sr.uuid });
    for (let i = 0; i < COUNT; i++)
      await ring.append({ label: new TextEncoder().encode(`r${i}`), data: randomBytes(RECORD) });
    const held = ring.list().length;
    await ring.close();
    const bench = 'remote mode (issue 25)';
    const measure = async (readOnly, fn) => {
      const dev = await RemoteDevice.open(xapi, ref, { readOnly });
      const r = await Ring.open(dev, readOnly ? { readOnly, rootsOnly: true } : {});
      await fn(r);
      await r.close();
      return dev.stats;
    };
    const list = await measure(true, async (r) => r.list());
    const verify = await measure(true, async (r) => {
      const rep = await r.verify();
      if (!rep.records.every((x) => x.ok)) throw new Error('verify failed');
    });
    const backup = await measure(false, (r) =>
      r.append({ label: new TextEncoder().encode('new'), data: randomBytes(4 * MiB) }),
    );
    const note = `${held} records of ${RECORD / MiB} MiB on a ${SIZE / MiB} MiB VDI`;
    rows.push(
      row({
        bench,
        metric: `list, bytes read (${note})`,
        ours: list.bytesRead / MiB,
        baseline: SIZE / MiB,
        unit: 'MiB',
        better: 'lower',
        goal: 'roots only (< 1 MiB)',
        pass: list.bytesRead < MiB,
      }),
      row({
        bench,
        metric: 'verify, bytes read (one export stream)',
        ours: verify.bytesRead / MiB,
        baseline: SIZE / MiB,
        unit: 'MiB',
        better: 'lower',
        goal: 'the records once',
        pass: verify.exports === 1,
      }),
      row({
        bench,
        metric: "verify, peak of the remote device's block cache (each byte streamed once)",
        ours: verify.peakBlocks * 2,
        unit: 'MiB',
      }),
      row({
        bench,
        metric:
          'backup of a 4 MiB record: bytes read (writable open checks for records beyond the root)',
        ours: backup.bytesRead / MiB,
        baseline: SIZE / MiB,
        unit: 'MiB',
        better: 'lower',
      }),
      row({
        bench,
        metric: `backup of a 4 MiB record: bytes written in ${backup.imports} PUTs`,
        ours: backup.bytesWritten / MiB,
        baseline: SIZE / MiB,
        unit: 'MiB',
        better: 'lower',
        goal: 'changed blocks only',
        pass: backup.bytesWritten < 12 * MiB,
      }),
    );
  } finally {
    await xapi.logout();
    await sim.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

await runIfMain(import.meta.url, run);
