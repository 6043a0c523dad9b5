import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LegacyError, openImage, openLegacyDisk } from '../src/index.js';
import { debugfsCat, firstBlock, legacyTree, mkfs, patch, sha } from './fixtures.js';

/** Opens and reads everything the layout exposes; returns the typed error, if any. */
/** Every caller also checks the promise that the image's bytes never change. */
async function readAll(
  img: string,
): Promise<{ error: LegacyError | null; skipped: string[]; warnings: string[]; dates: string[] }> {
  const before = sha(img);
  try {
    return await readEverything(img);
  } finally {
    expect(sha(img)).toBe(before);
  }
}

async function readEverything(
  img: string,
): Promise<{ error: LegacyError | null; skipped: string[]; warnings: string[]; dates: string[] }> {
  const dev = await openImage(img);
  try {
    const disk = await openLegacyDisk(dev, { timeoutMs: 5_000 });
    for (const date of disk.dates) {
      const b = await disk.backup(date);
      for (const v of b.vms) await v.read();
      await b.srmeta();
    }
    for (const d of disk.poolDbs) await d.read();
    return {
      error: null,
      skipped: disk.skipped.map((s) => `${s.path}: ${s.reason}`),
      warnings: disk.warnings,
      dates: disk.dates,
    };
  } catch (e) {
    if (!(e instanceof LegacyError)) throw e;
    return { error: e, skipped: [], warnings: [], dates: [] };
  } finally {
    await dev.close();
  }
}

describe('hostile legacy images end typed, bounded, and unchanged', () => {
  it('skips symlinks that point anywhere but ../../all/<same uuid>.vmmeta, bad dates and non-UTF-8 names', async () => {
    const { root, layout } = legacyTree({
      vms: 3,
      dates: ['2024-01-01-00-00-00'],
      extra: (r, l) => {
        const d = join(r, 'metadata', '2024-01-01-00-00-00', 'by-sr', l.srs[0]!);
        symlinkSync('/etc/shadow', join(d, '11111111-1111-4111-8111-111111111111.vmmeta'));
        symlinkSync('../../../../..', join(d, '22222222-2222-4222-8222-222222222222.vmmeta'));
        symlinkSync(
          `../../all/${l.vms[1]}.vmmeta`,
          join(d, '33333333-3333-4333-8333-333333333333.vmmeta'),
        );
        // A slow symlink (a target of 60 bytes or more lives in a data block).
        symlinkSync(
          `../../all/${'x'.repeat(90)}.vmmeta`,
          join(d, '55555555-5555-4555-8555-555555555555.vmmeta'),
        );
        // A link whose target is not UTF-8: skipped, not the end of the whole backup.
        symlinkSync(
          Buffer.from('../../all/\xff.vmmeta', 'latin1'),
          join(d, '44444444-4444-4444-8444-444444444444.vmmeta'),
        );
        mkdirSync(join(r, 'metadata', '9999-01-01-00-00-00', 'all'), { recursive: true });
        mkdirSync(join(r, 'metadata', 'latest'));
        writeFileSync(
          Buffer.from(`${r}/metadata/2024-01-01-00-00-00/all/\xff\xfe.vmmeta`, 'latin1'),
          'x',
        );
        // A large pool dump: double-indirect blocks with 1 KiB blocks.
        writeFileSync(join(r, `${l.pool}.db`), Buffer.alloc(2 * 1024 * 1024, 0x61));
      },
    });
    const img = mkfs(root, { sizeMiB: 32 });
    const before = sha(img);
    const r = await readAll(img);
    expect(r.error).toBeNull();
    expect(r.dates).toEqual(['2024-01-01-00-00-00']);
    const s = r.skipped.join('\n');
    expect(s).toContain(
      '11111111-1111-4111-8111-111111111111.vmmeta: the link points at "/etc/shadow"',
    );
    expect(s).toContain(
      '22222222-2222-4222-8222-222222222222.vmmeta: the link points at "../../../../.."',
    );
    expect(s).toContain('33333333-3333-4333-8333-333333333333.vmmeta: the link points at');
    expect(s).toContain(
      `55555555-5555-4555-8555-555555555555.vmmeta: the link points at "${`../../all/${'x'.repeat(90)}`.slice(0, 80)}"`,
    );
    expect(s).toMatch(
      /44444444-4444-4444-8444-444444444444\.vmmeta: the link cannot be read: symlink inode \d+ is not UTF-8/,
    );
    expect(s).toContain('/metadata/9999-01-01-00-00-00: not a backup date');
    expect(s).toContain('/metadata/latest: not a backup date');
    expect(s).toMatch(/all\/\(not UTF-8\): not <uuid>\.vmmeta/);
    const dev = await openImage(img);
    const disk = await openLegacyDisk(dev);
    expect(Buffer.from(await disk.poolDbs[0]!.read())).toEqual(
      debugfsCat(img, `/${layout.pool}.db`),
    );
    await dev.close();
    expect(sha(img)).toBe(before);
    rmSync(root, { recursive: true, force: true });
  }, 600_000);

  it('refuses a missing marker (but not one written twice), ext4, a truncated image; warns on needs_recovery', async () => {
    const none = legacyTree({ vms: 1, dates: ['2024-01-01-00-00-00'], marker: null });
    expect((await readAll(mkfs(none.root))).error?.code).toBe('LEGACY_NO_MARKER');
    // Existence is what upstream's restore checks: a marker written twice (`1\n1\n`, after
    // upstream re-initialised its rotation) or with another content is accepted.
    for (const marker of ['1\n1\n', '1\n1\n1\n1\n1\n1\n1\n1\n1\n', '']) {
      const again = legacyTree({ vms: 1, dates: ['2024-01-01-00-00-00'], marker });
      const read = await readAll(mkfs(again.root));
      expect(read.error).toBeNull();
      expect(read.dates).toEqual(['2024-01-01-00-00-00']);
      rmSync(again.root, { recursive: true, force: true });
    }
    const ok = legacyTree({ vms: 2, dates: ['2024-01-01-00-00-00'] });
    expect((await readAll(mkfs(ok.root, { type: 'ext4', blockSize: 4096 }))).error?.code).toBe(
      'LEGACY_UNSUPPORTED',
    );
    const img = mkfs(ok.root);
    const cut = `${img}.cut`;
    copyFileSync(img, cut);
    truncateSync(cut, 3 * 1024 * 1024);
    expect((await readAll(cut)).error?.code).toBe('LEGACY_CORRUPT');
    // s_feature_incompat |= RECOVER (superblock at 1024, field at 96).
    const rec = `${img}.rec`;
    copyFileSync(img, rec);
    const b = readFileSync(rec).subarray(1024 + 96, 1024 + 100);
    patch(rec, 1024 + 96, [b[0]! | 0x4, b[1]!, b[2]!, b[3]!]);
    const r = await readAll(rec);
    expect(r.error).toBeNull();
    expect(r.warnings.join()).toMatch(/needs recovery/);
    // meta_bg: group descriptors spread over the disk, which this reader does not follow.
    const meta = `${img}.meta`;
    copyFileSync(img, meta);
    patch(meta, 1024 + 96, [b[0]! | 0x10, b[1]!, b[2]!, b[3]!]);
    expect((await readAll(meta)).error?.code).toBe('LEGACY_UNSUPPORTED');
    for (const t of [none, ok]) rmSync(t.root, { recursive: true, force: true });
  }, 300_000);

  for (const sparse of [false, true])
    it(`many names for one big ${sparse ? 'sparse ' : ''}file (hard links) cannot make a reader hold more than twice the image`, async () => {
      const date = '2024-01-01-00-00-00';
      const { root } = legacyTree({
        vms: 1,
        dates: [date],
        extra: (r) => {
          const all = join(r, 'metadata', date, 'all');
          const big = join(all, '00000000-0000-4000-8000-000000000000.vmmeta');
          // A hole costs no read: 12 MiB of it, and no data block used.
          if (sparse) writeFileSync(big, '');
          if (sparse) truncateSync(big, 12 * 1024 * 1024);
          else writeFileSync(big, Buffer.alloc(4 * 1024 * 1024, 0x62));
          for (let i = 1; i <= 40; i++)
            linkSync(
              big,
              join(all, `00000000-0000-4000-8000-${String(i).padStart(12, '0')}.vmmeta`),
            );
        },
      });
      const img = mkfs(root, { sizeMiB: 16 });
      const before = sha(img);
      // 41 names x 4 MiB (or 12 MiB of holes) from a 16 MiB image: stopped at 64 MiB.
      const r = await readAll(img);
      expect(r.error?.code).toBe('LEGACY_LIMIT');
      expect(sha(img)).toBe(before);
      rmSync(root, { recursive: true, force: true });
    }, 300_000);

  it('a name twice in all/ (a forged directory) counts once; the second is skipped', async () => {
    const date = '2024-01-01-00-00-00';
    const { root, layout } = legacyTree({ vms: 3, dates: [date] });
    const img = mkfs(root);
    // Rename the second VM's entry in all/ to the first VM's name (same length).
    const blk = firstBlock(img, `/metadata/${date}/all`);
    const dir = readFileSync(img).subarray(blk * 1024, (blk + 1) * 1024);
    const at = dir.indexOf(Buffer.from(`${layout.vms[1]}.vmmeta`));
    expect(at).toBeGreaterThan(0);
    patch(img, blk * 1024 + at, [...Buffer.from(`${layout.vms[0]}.vmmeta`)]);
    const before = sha(img);
    const dev = await openImage(img);
    try {
      const disk = await openLegacyDisk(dev);
      const b = await disk.backup(date);
      expect(b.vms.map((v) => v.uuid).sort()).toEqual([layout.vms[0], layout.vms[2]].sort());
      expect(disk.skipped).toContainEqual({
        path: `/metadata/${date}/all/${layout.vms[0]}.vmmeta`,
        reason: 'a second entry of the same name',
      });
    } finally {
      await dev.close();
    }
    expect(sha(img)).toBe(before);
  });

  it('a wrecked inode table, a directory loop and huge sizes fail typed', async () => {
    const { root } = legacyTree({ vms: 2, dates: ['2024-01-01-00-00-00'] });
    const img = mkfs(root);
    const raw = readFileSync(img);
    const bs = 1024;
    const inodeTable = raw.readUInt32LE(2 * bs + 8);
    const inodeSize = raw.readUInt16LE(1024 + 88);
    // Root inode (2): a huge size, then block pointers outside the disk.
    const root2 = inodeTable * bs + inodeSize;
    for (const [off, bytes] of [
      [root2 + 4, [0xff, 0xff, 0xff, 0x7f]],
      [root2 + 40, [0xff, 0xff, 0xff, 0x00]],
    ] as [number, number[]][]) {
      const copy = `${img}.${off}`;
      copyFileSync(img, copy);
      patch(copy, off, bytes);
      const r = await readAll(copy);
      expect(r.error).toBeInstanceOf(LegacyError);
      expect(['LEGACY_CORRUPT', 'LEGACY_LIMIT', 'LEGACY_NO_MARKER']).toContain(r.error!.code);
    }
    // A directory entry of /metadata pointing back at the root: never walked as a tree.
    const loop = `${img}.loop`;
    copyFileSync(img, loop);
    execDebugfs(loop, 'link / /metadata/2024-01-02-00-00-00');
    const r = await readAll(loop);
    expect(r.error).toBeNull();
    expect(r.dates.sort()).toEqual(['2024-01-01-00-00-00', '2024-01-02-00-00-00']);
    rmSync(root, { recursive: true, force: true });
  }, 300_000);

  it('random byte flips in the filesystem metadata and in the backups: a result or a typed error, fast, the image unchanged', async () => {
    const { root } = legacyTree({ vms: 20, dates: ['2024-01-01-00-00-00', '2024-02-01-00-00-00'] });
    const img = mkfs(root, { sizeMiB: 4 });
    const good = readFileSync(img);
    const work = `${img}.fuzz`;
    // Superblock, group descriptors and inode tables lie in the first 300 KiB; the dated
    // folders, their links and the exports from /metadata's first block on.
    const meta = firstBlock(img, '/metadata') * 1024;
    const where = fc.oneof(
      fc.nat(300 * 1024),
      fc.integer({ min: meta, max: Math.min(good.length - 1, meta + 256 * 1024) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(where, fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (flips) => {
          const b = Buffer.from(good);
          for (const [pos, x] of flips) b[pos]! ^= x;
          writeFileSync(work, b);
          const t0 = Date.now();
          await readAll(work);
          // Generous, for a busy machine: it guards against a read that never ends.
          expect(Date.now() - t0).toBeLessThan(30_000);
        },
      ),
      { numRuns: 150 },
    );
    rmSync(root, { recursive: true, force: true });
  }, 300_000);
});

function execDebugfs(img: string, cmd: string): void {
  execFileSync('debugfs', ['-w', '-R', cmd, img], { stdio: 'ignore' });
}
