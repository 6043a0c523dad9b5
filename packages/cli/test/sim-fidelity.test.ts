// The tool against behaviours of a real pool that the simulator now has (its README's
// fidelity table): each was a defect of the tool that a lenient simulator hid.
import { expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, devicesLeft, pool, withEnv } from './support.js';

const records = async () => {
  const io = capture();
  expect(await xsmeta(['list', '--json'], io)).toBe(0);
  return (JSON.parse(io.stdout[0]!) as { seq: number }[]).map((r) => r.seq);
};

it('a pool database dump cut part-way (no Content-Length to tell) fails the backup and records nothing', async () => {
  const p = await pool({ vms: 4 });
  await withEnv(p.env, async () => {
    expect(await xeBackup(['-c'], capture())).toBe(0);
    const before = await records();
    p.sim.faults.set({ cut: [{ match: '/pool/xmldbdump', afterBytes: 5000 }] });
    const io = capture();
    expect(await xeBackup([], io)).toBe(1);
    expect(io.stderr.join('\n')).toContain('INTERNAL_ERROR');
    p.sim.faults.clear();
    expect(await records()).toEqual(before);
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
  });
  await p.close();
});
