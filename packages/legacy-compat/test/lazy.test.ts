import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LegacyError, openImage, openLegacyDisk } from '../src/index.js';
import { firstBlock, legacyTree, mkfs, patch, sha } from './fixtures.js';

describe('listing a legacy disk does not open its backups', () => {
  for (const blockSize of [1024, 4096]) {
    it(`a backup whose all/ directory is wrecked is still listed and only fails when opened (${blockSize}-byte blocks)`, async () => {
      const dates = ['2024-01-01-00-00-00', '2024-02-01-00-00-00', '2024-03-01-00-00-00'];
      const wrecked = dates[1]!;
      const { root, layout } = legacyTree({ vms: 40, dates });
      const img = mkfs(root, { blockSize, sizeMiB: 16 });
      // The first entry of all/'s first block ("."): rec_len 0, which no directory may hold.
      const blk = firstBlock(img, `/metadata/${wrecked}/all`);
      patch(img, blk * blockSize + 4, [0, 0]);
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
    }, 300_000);
  }
});

describe('reading a backup', () => {
  /** openImage, counting reads and the most that were in flight at once. */
  async function counted(img: string) {
    const dev = await openImage(img);
    const st = { reads: 0, inFlight: 0, maxInFlight: 0 };
    return {
      st,
      close: () => dev.close(),
      dev: {
        size: dev.size,
        async read(offset: number, length: number) {
          st.reads++;
          st.maxInFlight = Math.max(st.maxInFlight, ++st.inFlight);
          try {
            // A turn of the event loop, as a real disk's answer takes: other reads may start.
            await new Promise((r) => setImmediate(r));
            return await dev.read(offset, length);
          } finally {
            st.inFlight--;
          }
        },
      },
    };
  }

  it('lists a 300-VM backup in far fewer reads than it has inodes (the inode table is read in runs)', async () => {
    const { root, layout } = legacyTree({ vms: 300, dates: ['2024-01-01-00-00-00'] });
    const img = mkfs(root, { blockSize: 4096, sizeMiB: 16 });
    const c = await counted(img);
    try {
      const disk = await openLegacyDisk(c.dev);
      const b = await disk.backup(disk.dates[0]!);
      expect(b.vms).toHaveLength(300);
      expect([...b.bySr.values()].flat().sort()).toEqual([...layout.vms].sort());
      // 600 inodes (files and links), 16 to a 4 KiB block: one read a block would be ~40.
      expect(c.st.reads).toBeLessThan(25);
    } finally {
      await c.close();
    }
  });

  it('exports() hands out every export once, in disk order, in a few large reads; a failed read ends it', async () => {
    const date = '2024-01-01-00-00-00';
    const { root, layout } = legacyTree({ vms: 30, dates: [date] });
    const img = mkfs(root, { blockSize: 1024 });
    const c = await counted(img);
    try {
      const disk = await openLegacyDisk(c.dev);
      const b = await disk.backup(date);
      const one = new Map<string, Uint8Array>();
      for (const v of b.vms) one.set(v.uuid, await v.read());
      const before = c.st.reads;
      const seen: string[] = [];
      for await (const e of b.exports()) {
        expect(Buffer.from(e.data).equals(Buffer.from(one.get(e.uuid)!))).toBe(true);
        seen.push(e.uuid);
      }
      // 30 files of 3 KiB, read one by one above (30 reads): here one run of their blocks.
      expect(c.st.reads - before).toBeLessThanOrEqual(2);
      expect([...seen].sort()).toEqual([...layout.vms].sort());
      const blocks = seen.map((u) => firstBlock(img, `/metadata/${date}/all/${u}.vmmeta`));
      expect(blocks).toEqual([...blocks].sort((x, y) => x - y));

      // A read that fails (a bad sector under one file) ends the iteration with its error.
      const bad = blocks[12]! * 1024;
      const failing = new LegacyError('LEGACY_CORRUPT', 'bad sector');
      const dev = {
        size: c.dev.size,
        read: (offset: number, length: number) =>
          offset <= bad && bad < offset + length
            ? Promise.reject(failing)
            : c.dev.read(offset, length),
      };
      const again = await (await openLegacyDisk(dev)).backup(date);
      const err = await (async () => {
        for await (const _ of again.exports()) {
          // drained
        }
      })().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBe(failing);
    } finally {
      await c.close();
    }
  });
});
