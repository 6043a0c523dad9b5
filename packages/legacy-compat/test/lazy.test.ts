import { execFileSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LegacyError, openImage, openLegacyDisk } from '../src/index.js';
import { legacyTree, mkfs, sha } from './fixtures.js';

/** The first data block of a path, as debugfs sees it. */
function firstBlock(img: string, path: string): number {
  const out = execFileSync('debugfs', ['-R', `blocks ${path}`, img], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const b = Number(out.trim().split(/\s+/)[0]);
  if (!Number.isInteger(b) || b <= 0) throw new Error(`no block for ${path}: ${out}`);
  return b;
}

describe('listing a legacy disk does not open its backups', () => {
  for (const blockSize of [1024, 4096]) {
    it(`a backup whose all/ directory is wrecked is still listed and only fails when opened (${blockSize}-byte blocks)`, async () => {
      const dates = ['2024-01-01-00-00-00', '2024-02-01-00-00-00', '2024-03-01-00-00-00'];
      const wrecked = dates[1]!;
      const { root, layout } = legacyTree({ vms: 40, dates });
      const img = mkfs(root, { blockSize, sizeMiB: 16 });
      // The first entry of all/'s first block ("."): rec_len 0, which no directory may hold.
      const blk = firstBlock(img, `/metadata/${wrecked}/all`);
      const fd = openSync(img, 'r+');
      writeSync(fd, Buffer.from([0, 0]), 0, 2, blk * blockSize + 4);
      closeSync(fd);
      // debugfs agrees the directory is now unreadable (the patch hit what we meant).
      const ls = execFileSync('debugfs', ['-R', `ls /metadata/${wrecked}/all`, img], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      expect(ls).not.toContain(layout.vms[0]!);
      const before = sha(img);

      const dev = await openImage(img);
      try {
        const disk = await openLegacyDisk(dev);
        expect(disk.dates).toEqual([...dates].reverse());
        for (const date of dates.filter((d) => d !== wrecked)) {
          const b = await disk.backup(date);
          expect(b.vms.map((v) => v.uuid).sort()).toEqual([...layout.vms].sort());
          expect(new TextDecoder().decode(await b.vms[0]!.read())).toContain(date);
        }
        const err = await disk.backup(wrecked).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(LegacyError);
        expect((err as LegacyError).code).toBe('LEGACY_CORRUPT');
        // The other backups stay readable after the failure.
        expect((await disk.backup(dates[0]!)).vms).toHaveLength(layout.vms.length);
      } finally {
        await dev.close();
      }
      expect(sha(img)).toBe(before);
      for (const d of [root, dirname(img)]) rmSync(d, { recursive: true, force: true });
    }, 60_000);
  }
});
