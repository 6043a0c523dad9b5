import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';

// Every image here is made by mke2fs and read back by debugfs, the reference.
requireTools('mke2fs', 'debugfs');

/** The temporary folders this test file made, removed when it ends (imported at collection). */
const made: string[] = [];
afterAll(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

export const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

export interface Layout {
  pool: string;
  srs: string[];
  dates: string[];
  vms: string[];
  /** vm uuid -> SR uuid */
  vmSr: Map<string, string>;
}

/** A folder laid out as the old xe-backup-metadata wrote it; `extra` adds hostile entries. */
export function legacyTree(o: {
  vms: number;
  dates: string[];
  marker?: string | null;
  extra?: (root: string, l: Layout) => void;
}): { root: string; layout: Layout } {
  const root = tempDir('legacy-tree-');
  const pool = randomUUID();
  const srs = [randomUUID(), randomUUID()];
  const vms = Array.from({ length: o.vms }, () => randomUUID());
  const vmSr = new Map(vms.map((v, i) => [v, srs[i % 2]!]));
  if (o.marker !== null) writeFileSync(join(root, '.ctxs-metadata-backup'), o.marker ?? '1\n');
  mkdirSync(join(root, 'conf'));
  writeFileSync(join(root, 'conf', 'x'), `/${pool}.db {\n rotate 12\n}\n`);
  writeFileSync(join(root, `${pool}.db`), `<database>newest ${pool}</database>`);
  writeFileSync(join(root, `${pool}.db.1`), '<database>older</database>');
  for (const date of o.dates) {
    const d = join(root, 'metadata', date);
    mkdirSync(join(d, 'all'), { recursive: true });
    writeFileSync(
      join(d, 'SRMETA.xml'),
      `<meta><sr uuid="${srs[0]}" name_label="SR A" name_description=""/></meta>`,
    );
    for (const v of vms) {
      writeFileSync(join(d, 'all', `${v}.vmmeta`), `ova.xml ${date} ${v} ${'x'.repeat(3000)}`);
      mkdirSync(join(d, 'by-sr', vmSr.get(v)!), { recursive: true });
      symlinkSync(`../../all/${v}.vmmeta`, join(d, 'by-sr', vmSr.get(v)!, `${v}.vmmeta`));
    }
  }
  const layout = { pool, srs, dates: o.dates, vms, vmSr };
  o.extra?.(root, layout);
  return { root, layout };
}

/** `mke2fs -t ext3 -d`, as the old scripts' disks were made (no root needed). */
export function mkfs(
  root: string,
  o: { blockSize?: number; sizeMiB?: number; type?: string } = {},
): string {
  const img = join(tempDir('legacy-img-'), 'disk.img');
  execFileSync(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t',
      o.type ?? 'ext3',
      '-b',
      String(o.blockSize ?? 1024),
      '-d',
      root,
      img,
      `${o.sizeMiB ?? 16}M`,
    ],
    { stdio: 'ignore' },
  );
  return img;
}

/** What debugfs reads for a path (the reference reader). */
export function debugfsCat(img: string, path: string): Buffer {
  return execFileSync('debugfs', ['-R', `cat "${path}"`, img], {
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 64 * 1024 * 1024,
  });
}

/** The first data block of a path, as debugfs sees it. */
export function firstBlock(img: string, path: string): number {
  const out = execFileSync('debugfs', ['-R', `blocks ${path}`, img], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const b = Number(out.trim().split(/\s+/)[0]);
  if (!Number.isInteger(b) || b <= 0) throw new Error(`no block for ${path}: ${out}`);
  return b;
}

/** Writes `bytes` at `offset` of an image (how the tests forge and wreck disks). */
export function patch(img: string, offset: number, bytes: readonly number[]): void {
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  closeSync(fd);
}
