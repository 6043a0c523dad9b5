import { execFileSync, spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { openImage, openLegacyDisk } from '../src/index.js';
import { legacyTree, mkfs, sha } from './fixtures.js';

/** A read-only loop device over img. */
function loopDevice(img: string): string {
  return execFileSync('losetup', ['-r', '-f', '--show', img], { encoding: 'utf8' }).trim();
}

/** Root, and a free loop device to be had (not so in every container). */
const canLoop = process.getuid?.() === 0 && spawnSync('losetup', ['-f']).status === 0;

// A plugged VBD is a block device (/dev/xvdX), whose size stat() reports as 0.
it.skipIf(!canLoop)('reads a legacy disk through a block device, as a plugged VBD is', async () => {
  const dates = ['2024-01-01-00-00-00', '2024-02-01-00-00-00'];
  const { root, layout } = legacyTree({ vms: 12, dates });
  const img = mkfs(root, { sizeMiB: 16 });
  const before = sha(img);
  const dev = loopDevice(img);
  try {
    const d = await openImage(dev);
    try {
      expect(d.size).toBe(16 * 1024 * 1024);
      const disk = await openLegacyDisk(d);
      expect(disk.dates).toEqual([...dates].reverse());
      const b = await disk.backup(dates[0]!);
      expect(b.vms.map((v) => v.uuid).sort()).toEqual([...layout.vms].sort());
    } finally {
      await d.close();
    }
  } finally {
    execFileSync('losetup', ['-d', dev]);
  }
  expect(sha(img)).toBe(before);
});
