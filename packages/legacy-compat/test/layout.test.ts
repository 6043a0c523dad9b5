import { rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openImage, openLegacyDisk } from '../src/index.js';
import { debugfsCat, legacyTree, mkfs, sha } from './fixtures.js';

describe('reading legacy backup disks made by mke2fs -t ext3 -d', () => {
  for (const blockSize of [1024, 4096]) {
    it(`lists backups newest first and reads every file as debugfs does (${blockSize}-byte blocks, large directories)`, async () => {
      const dates = ['2024-01-02-03-04-05', '2024-03-01-00-00-00', '2023-12-31-23-59-59'];
      const { root, layout } = legacyTree({ vms: 300, dates });
      const img = mkfs(root, { blockSize, sizeMiB: 64 });
      const before = sha(img);
      const dev = await openImage(img);
      const disk = await openLegacyDisk(dev);
      expect(disk.dates).toEqual([...dates].sort().reverse());
      // A date that is not there is a typed error that lists those that are.
      await expect(disk.backup('2020-01-01-00-00-00')).rejects.toMatchObject({
        code: 'LEGACY_NO_BACKUP',
      });
      expect(disk.poolDbs.map((d) => d.name)).toEqual([`${layout.pool}.db`, `${layout.pool}.db.1`]);
      expect(new TextDecoder().decode(await disk.poolDbs[0]!.read())).toContain('newest');
      const newest = await disk.backup(disk.dates[0]!);
      expect(newest.vms.map((v) => v.uuid).sort()).toEqual([...layout.vms].sort());
      for (const v of newest.vms.slice(0, 25)) {
        expect(Buffer.from(await v.read())).toEqual(
          debugfsCat(img, `/metadata/${newest.date}/all/${v.uuid}.vmmeta`),
        );
      }
      for (const sr of layout.srs) {
        expect([...(newest.bySr.get(sr) ?? [])].sort()).toEqual(
          layout.vms.filter((v) => layout.vmSr.get(v) === sr).sort(),
        );
      }
      expect(new TextDecoder().decode((await newest.srmeta())!)).toContain('SR A');
      expect(disk.skipped).toEqual([]);
      await dev.close();
      expect(sha(img)).toBe(before);
      rmSync(root, { recursive: true, force: true });
    }, 60_000);
  }
});
