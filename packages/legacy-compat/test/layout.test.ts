import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseBackupDate } from '@xsmeta/core';
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
    }, 300_000);
  }
});

describe('pool database dumps', () => {
  const dates = ['2024-01-01-00-00-00', '2024-02-01-00-00-00', '2024-03-01-00-00-00'];
  const open = async (extra?: (root: string, pool: string) => void) => {
    const { root, layout } = legacyTree({
      vms: 1,
      dates,
      extra: (r, l) => extra?.(r, l.pool),
    });
    const img = mkfs(root);
    rmSync(root, { recursive: true, force: true });
    const dev = await openImage(img);
    return { disk: await openLegacyDisk(dev), dev, pool: layout.pool, img };
  };

  it('pairs the Nth newest dump with the Nth newest backup when the rotation is unbroken', async () => {
    const { disk, dev, pool, img } = await open();
    const paired = await Promise.all(
      disk.dates.map(async (d) => {
        const db = disk.poolDbFor(d);
        return db ? `${db.name} ${db.poolUuid === pool} ${(await db.read()).length > 0}` : null;
      }),
    );
    expect(paired).toEqual([`${pool}.db true true`, `${pool}.db.1 true true`, null]);
    expect(disk.warnings).toEqual([]);
    await dev.close();
    rmSync(img, { force: true });
  });

  it('pairs none, with a warning, when a dump is missing or two pools wrote dumps', async () => {
    for (const extra of [
      (r: string, pool: string) => rmSync(join(r, `${pool}.db`)),
      (r: string) => writeFileSync(join(r, `${randomUUID()}.db.2`), '<database/>'),
    ]) {
      const { disk, dev, img } = await open(extra);
      expect(disk.dates.map((d) => disk.poolDbFor(d))).toEqual([null, null, null]);
      expect(disk.warnings.join('\n')).toMatch(/none is paired with a backup/);
      await dev.close();
      rmSync(img, { force: true });
    }
  });
});

describe('backup folder names', () => {
  it('lists a folder by core’s one date rule, and up to a day in the future', async () => {
    const now = Date.UTC(2024, 5, 1, 12, 0, 0);
    const names = [
      '2024-06-01-12-00-00',
      '2024-02-29-08-00-00',
      '2023-02-29-08-00-00', // no such day
      '2024-06-01-24-00-00', // no hour 24
      '2024-06-01-11-60-00', // no minute 60
      '2024-06-02-11-59-59', // a clock a little fast: listed
      '2024-06-02-12-00-01', // more than a day ahead: not
    ];
    const { root } = legacyTree({ vms: 1, dates: names });
    const img = mkfs(root);
    rmSync(root, { recursive: true, force: true });
    const dev = await openImage(img);
    const disk = await openLegacyDisk(dev, {}, now);
    await dev.close();
    const listed = names.filter((n) => {
      const t = parseBackupDate(n);
      return t !== null && t.getTime() <= now + 86_400_000;
    });
    expect(listed).toHaveLength(3);
    expect(disk.dates).toEqual([...listed].sort().reverse());
    expect(disk.skipped.map((k) => k.path).sort()).toEqual(
      names
        .filter((n) => !listed.includes(n))
        .map((n) => `/metadata/${n}`)
        .sort(),
    );
  }, 300_000);
});
