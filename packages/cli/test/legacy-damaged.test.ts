// A legacy disk one of whose backups cannot be read: listed as damaged, the others listed.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { legacyListing } from '@xsmeta/core';
import { openImage, openLegacyDisk } from '@xsmeta/legacy-compat';
import { expect, it } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';

// The old scripts' disks are made with mke2fs -d and looked into with debugfs.
requireTools('mke2fs', 'debugfs');

it('a legacy backup that cannot be read is listed as damaged; the others stay listed', async () => {
  const tree = mkdtempSync(join(tmpdir(), 'legacy-tree-'));
  const dates = ['2024-01-01-00-00-00', '2024-02-01-00-00-00'];
  writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
  for (const date of dates) {
    mkdirSync(join(tree, 'metadata', date, 'all'), { recursive: true });
    for (let i = 0; i < 3; i++)
      writeFileSync(join(tree, 'metadata', date, 'all', `${randomUUID()}.vmmeta`), 'ova.xml');
  }
  const img = join(tree, '..', `${tree.split('/').at(-1)}.img`);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext3', '-b', '1024', '-d', tree, img, '8M'], {
    stdio: 'ignore',
  });
  // The newest backup's all/ directory: its first entry's rec_len set to 0.
  const blk = Number(
    execFileSync('debugfs', ['-R', `blocks /metadata/${dates[1]}/all`, img], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim(),
  );
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.from([0, 0]), 0, 2, blk * 1024 + 4);
  closeSync(fd);
  const dev = await openImage(img);
  try {
    const r = await legacyListing(await openLegacyDisk(dev));
    expect(r.backups).toEqual([
      { date: dates[1], vmCount: 0, damaged: expect.stringMatching(/^LEGACY_CORRUPT: /) },
      { date: dates[0], vmCount: 3 },
    ]);
    expect(r.skipped).toEqual([
      { path: `/metadata/${dates[1]}`, reason: expect.stringMatching(/^LEGACY_CORRUPT: /) },
    ]);
  } finally {
    await dev.close();
    rmSync(tree, { recursive: true, force: true });
    rmSync(img, { force: true });
  }
});
