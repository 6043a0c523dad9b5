import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, rmSync, truncateSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openImage, openLegacyDisk } from '../src/index.js';
import { legacyTree, mkfs, sha } from './fixtures.js';

/**
 * The facts DECISION.md rests on, about the `ext2fs` package it turned down (run over a
 * read-only file-disk in a child process, test/ext2fs-read.mjs). If a new ext2fs release
 * changes them, these fail and the decision is worth reopening.
 */
const helper = fileURLToPath(new URL('./ext2fs-read.mjs', import.meta.url));

interface Ext2fsRead {
  mountError?: string;
  files: Record<string, string>;
  overlayWrites: number;
}

function ext2fsRead(img: string, checkShortReads: boolean, paths: string[]): Ext2fsRead {
  const out = execFileSync(process.execPath, [helper, img, checkShortReads ? '1' : '0', ...paths], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 30_000,
  });
  return JSON.parse(out.split('\n')[0]!) as Ext2fsRead;
}

const h = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('ext2fs (libext2fs in WebAssembly) against our reader, same images', () => {
  it('reads the same bytes, but writes to its overlay while reading (it opens read-write)', async () => {
    const date = '2024-01-02-03-04-05';
    const { root, layout } = legacyTree({ vms: 4, dates: [date] });
    const img = mkfs(root);
    const before = sha(img);
    const dev = await openImage(img);
    const disk = await openLegacyDisk(dev);
    const b = await disk.backup(date);
    const ours: Record<string, string> = {};
    for (const v of b.vms) ours[`/metadata/${date}/all/${v.uuid}.vmmeta`] = h(await v.read());
    await dev.close();
    expect(Object.keys(ours)).toHaveLength(layout.vms.length);
    const r = ext2fsRead(img, false, Object.keys(ours));
    expect(r.mountError).toBeUndefined();
    expect(r.files).toEqual(ours);
    // Inode updates (access times) on close: caught by the read-only disk's overlay.
    expect(r.overlayWrites).toBeGreaterThan(0);
    expect(sha(img)).toBe(before);
    for (const d of [root, dirname(img)]) rmSync(d, { recursive: true, force: true });
  }, 300_000);

  it('mounts a truncated image as if whole unless the disk checks short reads; ours refuses it', async () => {
    const { root } = legacyTree({ vms: 2, dates: ['2024-01-02-03-04-05'] });
    const img = mkfs(root);
    const cut = `${img}.cut`;
    copyFileSync(img, cut);
    truncateSync(cut, 3 * 1024 * 1024);
    const before = sha(cut);
    const dev = await openImage(cut);
    await expect(openLegacyDisk(dev)).rejects.toMatchObject({ code: 'LEGACY_CORRUPT' });
    await dev.close();
    const loose = ext2fsRead(cut, false, ['/.ctxs-metadata-backup']);
    expect(loose.mountError).toBeUndefined();
    const checked = ext2fsRead(cut, true, ['/.ctxs-metadata-backup']);
    expect(checked.mountError).toBeDefined();
    expect(sha(cut)).toBe(before);
    for (const d of [root, dirname(img)]) rmSync(d, { recursive: true, force: true });
  }, 300_000);
});
