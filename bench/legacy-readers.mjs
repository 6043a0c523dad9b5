// Over 400 lines on purpose: one self-contained harness that must run the same job through two
// readers in child processes, with the corpus of valid and hostile images it builds inline.
// Evidence for packages/legacy-compat/DECISION.md: our bounded ext2/ext3 reader against the
// `ext2fs` npm package (libext2fs in WebAssembly) over `file-disk`'s
// FileDisk(handle, readOnly = true, recordWrites = true), on the same corpus of images: valid
// fixtures (1 KiB and 4 KiB blocks, large and hash-indexed directories, symlinks) and the
// hostile images issue 9 lists, plus seeded fuzzed images.
//
//   node bench/legacy-readers.mjs        (build dist first: pnpm build)
//
// Each reader does the same job under the same layout policy (marker `1`, dated folders,
// all/<uuid>.vmmeta, by-sr links only when exactly ../../all/<uuid>.vmmeta, SRMETA.xml, pool
// dumps; files above 256 MiB refused) in its own child process with a 60 s kill timer, so a
// crash, a hang or a memory blow-up of one run cannot hide another. A third column runs ext2fs
// with a FileDisk subclass that turns short reads into errors (file-disk reports every read as
// complete). Printed: the result, the job's time (after module start), the child's peak RSS,
// whether the image's sha256 is unchanged, and whether the two readers read the same bytes.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBackupDate } from '@xsmeta/core';

const SELF = fileURLToPath(import.meta.url);
const MAX_FILE = 256 * 2 ** 20;
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const VMMETA = new RegExp(`^(${UUID})\\.vmmeta$`);
const SR_DIR = new RegExp(`^${UUID}$`);
const POOL_DB = new RegExp(`^${UUID}\\.db(?:\\.\\d{1,3})?$`);
/** layout.ts's rule: core's backup date, at most a day in the future. */
function validDate(name) {
  const t = parseBackupDate(name);
  return t !== null && t.getTime() <= Date.now() + 86_400_000;
}

const h256 = (b) => createHash('sha256').update(b).digest('hex');

/** What a reader read, in a form both produce: compared across readers by its digest. */
function summary(r) {
  const d = createHash('sha256');
  for (const [n, h] of r.dbs) d.update(`db ${n} ${h}\n`);
  for (const b of r.backups) {
    d.update(`date ${b.date} srmeta ${b.srmeta}\n`);
    for (const [u, h] of [...b.vms].sort()) d.update(`vm ${u} ${h}\n`);
    for (const [s, l] of [...b.bySr].sort()) d.update(`sr ${s} ${[...l].sort().join(',')}\n`);
  }
  const vms = r.backups.reduce((n, b) => n + b.vms.length, 0);
  return { dates: r.backups.length, vms, skipped: r.skipped, digest: d.digest('hex').slice(0, 12) };
}

// ---------------------------------------------------------------- the two readers (child side)

async function readOurs(img) {
  const { openImage, openLegacyDisk } = await import('@xsmeta/legacy-compat');
  const t0 = performance.now();
  const dev = await openImage(img);
  try {
    const disk = await openLegacyDisk(dev, { timeoutMs: 20_000 });
    const r = { dbs: [], backups: [], skipped: 0 };
    for (const db of disk.poolDbs) r.dbs.push([db.name, h256(await db.read())]);
    for (const date of disk.dates) {
      const b = await disk.backup(date);
      const vms = [];
      for (const v of b.vms) vms.push([v.uuid, h256(await v.read())]);
      const sm = await b.srmeta();
      r.backups.push({ date, vms, bySr: [...b.bySr], srmeta: sm ? h256(sm) : '-' });
    }
    r.skipped = disk.skipped.length;
    return {
      ok: true,
      ms: performance.now() - t0,
      warnings: disk.warnings.length,
      ...summary(r),
    };
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, error: `${e.code ?? e.name}: ${e.message}` };
  } finally {
    await dev.close();
  }
}

async function readExt2fs(img, checkShortReads, report) {
  // The devDependencies of @xsmeta/legacy-compat, resolved from that package.
  const req = createRequire(new URL('../packages/legacy-compat/package.json', import.meta.url));
  const { mount, umount } = req('ext2fs');
  const { FileDisk, BufferDisk } = req('file-disk');
  class CheckedDisk extends FileDisk {
    async _read(buffer, bufferOffset, length, fileOffset) {
      const r = await super._read(buffer, bufferOffset, length, fileOffset);
      if (r.bytesRead !== length) throw new Error(`short read at ${fileOffset}`);
      return r;
    }
  }
  // Start the WebAssembly module before the clock: mounting an empty disk fails once it runs.
  await mount(new BufferDisk(Buffer.alloc(4096), true, true), 0).catch(() => {});
  const { open } = await import('node:fs/promises');
  const handle = await open(img, 'r');
  const disk = checkShortReads
    ? new CheckedDisk(handle, true, true)
    : new FileDisk(handle, true, true);
  const t0 = performance.now();
  let fs;
  const out = (o) => ({
    ms: performance.now() - t0,
    overlayWrites: disk.knownChunks
      .filter((c) => c.constructor.name === 'BufferDiskChunk')
      .reduce((n, c) => n + (c.end - c.start + 1), 0),
    ...o,
  });
  try {
    fs = await mount(disk, 0);
    const p = fs.promises;
    const lst = async (path) => p.lstat(path);
    // Bytes through the fd API: readFile() always decodes to a UTF-8 string.
    const readBytes = async (path) => {
      const fh = await p.open(path, 'r');
      try {
        const { size } = await fh.stat();
        if (size > MAX_FILE)
          throw Object.assign(new Error(`${path}: ${size} bytes`), { code: 'LIMIT' });
        const buf = Buffer.alloc(size);
        for (let off = 0; off < size; ) {
          const n = Math.min(1 << 20, size - off);
          const { bytesRead } = await fh.read(buf, off, n, off);
          if (bytesRead === 0)
            throw Object.assign(new Error(`${path}: short file`), { code: 'SHORT' });
          off += bytesRead;
        }
        return buf;
      } finally {
        await fh.close();
      }
    };
    const bad = (n) => n.includes('\ufffd');
    const r = { dbs: [], backups: [], skipped: 0 };
    const root = await p.readdir('/');
    if (!root.includes('.ctxs-metadata-backup'))
      return report(out({ ok: false, error: 'NO_MARKER' }));
    const ms = await lst('/.ctxs-metadata-backup');
    if (!ms.isFile() || ms.size > 16)
      return report(out({ ok: false, error: 'BAD_MARKER: not a small file' }));
    const marker = (await readBytes('/.ctxs-metadata-backup')).toString().trim();
    if (marker !== '1')
      return report(out({ ok: false, error: `BAD_MARKER: "${marker.slice(0, 8)}"` }));
    const dbs = root.filter((n) => POOL_DB.test(n));
    dbs.sort(
      (a, b) => Number(a.split('.db')[1].slice(1) || 0) - Number(b.split('.db')[1].slice(1) || 0),
    );
    for (const n of dbs) {
      if ((await lst(`/${n}`)).isFile()) r.dbs.push([n, h256(await readBytes(`/${n}`))]);
    }
    if (root.includes('metadata') && (await lst('/metadata')).isDirectory()) {
      const dates = [];
      for (const d of await p.readdir('/metadata')) {
        if (bad(d) || !validDate(d) || !(await lst(`/metadata/${d}`)).isDirectory()) r.skipped++;
        else dates.push(d);
      }
      for (const date of dates.sort().reverse()) {
        const base = `/metadata/${date}`;
        const names = await p.readdir(base);
        const vms = [];
        const known = new Set();
        if (names.includes('all') && (await lst(`${base}/all`)).isDirectory()) {
          for (const f of await p.readdir(`${base}/all`)) {
            const m = bad(f) ? null : VMMETA.exec(f);
            if (!m || !(await lst(`${base}/all/${f}`)).isFile()) {
              r.skipped++;
              continue;
            }
            known.add(m[1]);
            vms.push([m[1], h256(await readBytes(`${base}/all/${f}`))]);
          }
        }
        const bySr = [];
        if (names.includes('by-sr') && (await lst(`${base}/by-sr`)).isDirectory()) {
          for (const s of await p.readdir(`${base}/by-sr`)) {
            const sp = `${base}/by-sr/${s}`;
            if (!SR_DIR.test(s) || !(await lst(sp)).isDirectory()) {
              r.skipped++;
              continue;
            }
            const list = [];
            for (const v of await p.readdir(sp)) {
              const m = bad(v) ? null : VMMETA.exec(v);
              if (!m || !(await lst(`${sp}/${v}`)).isSymbolicLink()) {
                r.skipped++;
                continue;
              }
              const target = await p.readlink(`${sp}/${v}`);
              if (target === `../../all/${m[1]}.vmmeta` && known.has(m[1])) list.push(m[1]);
              else r.skipped++;
            }
            bySr.push([s, list]);
          }
        }
        let srmeta = '-';
        if (names.includes('SRMETA.xml') && (await lst(`${base}/SRMETA.xml`)).isFile())
          srmeta = h256(await readBytes(`${base}/SRMETA.xml`));
        r.backups.push({ date, vms, bySr, srmeta });
      }
    }
    report(out({ ok: true, ...summary(r) }));
  } catch (e) {
    report(out({ ok: false, error: `${e.code ?? e.name}: ${String(e.message).slice(0, 120)}` }));
  } finally {
    // After the result is out: the documented use (withMountedDisk) always unmounts.
    if (fs) {
      process.stdout.write(`${JSON.stringify({ unmounting: true })}\n`);
      await umount(fs);
    }
    await handle.close();
  }
}

async function child(reader, img) {
  const report = (r) => {
    r.rssMiB = Math.round(process.resourceUsage().maxRSS / 1024);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  };
  if (reader === 'ours') report(await readOurs(img));
  else await readExt2fs(img, reader === 'ext2fs+check', report);
  process.stdout.write(`${JSON.stringify({ done: true })}\n`);
}

// ---------------------------------------------------------------- the corpus (parent side)

function tree(dir, o) {
  const root = join(dir, `tree-${Math.random().toString(36).slice(2)}`);
  const pool = '0bd3c7e5-6a4f-4b1e-9a55-2f1c0e8b7d41';
  const srs = ['5a1e2b3c-4d5e-4f60-8172-839405a6b7c8', '9f8e7d6c-5b4a-4392-a817-263544536271'];
  const vms = Array.from(
    { length: o.vms },
    (_, i) => `${(0x10000000 + i).toString(16)}-aaaa-4bbb-8ccc-${String(i).padStart(12, '0')}`,
  );
  mkdirSync(join(root, 'conf'), { recursive: true });
  if (o.marker !== null) writeFileSync(join(root, '.ctxs-metadata-backup'), o.marker ?? '1\n');
  writeFileSync(join(root, 'conf', 'vdi'), `/${pool}.db {\n rotate 12\n}\n`);
  writeFileSync(join(root, `${pool}.db`), `<database>newest ${'r'.repeat(5000)}</database>`);
  writeFileSync(join(root, `${pool}.db.1`), '<database>older</database>');
  for (const date of o.dates) {
    const d = join(root, 'metadata', date);
    mkdirSync(join(d, 'all'), { recursive: true });
    writeFileSync(join(d, 'SRMETA.xml'), `<meta><sr uuid="${srs[0]}" name_label="SR A"/></meta>`);
    vms.forEach((v, i) => {
      // Binary bytes too (a tar has NULs; names and values may be any bytes).
      const body = Buffer.concat([
        Buffer.from(`ova.xml ${date} ${v} `),
        Buffer.from(Array.from({ length: 256 }, (_, k) => k)),
        Buffer.alloc(1000 + ((i * 977) % 9000), 0x41 + (i % 26)),
      ]);
      writeFileSync(join(d, 'all', `${v}.vmmeta`), body);
      const sr = srs[i % 2];
      mkdirSync(join(d, 'by-sr', sr), { recursive: true });
      symlinkSync(`../../all/${v}.vmmeta`, join(d, 'by-sr', sr, `${v}.vmmeta`));
    });
  }
  o.extra?.(root, { vms, srs, pool });
  return root;
}

function mkfs(dir, root, o = {}) {
  const img = join(dir, `${o.name}.img`);
  execFileSync(
    'mke2fs',
    [
      '-q',
      '-F',
      '-t',
      o.type ?? 'ext3',
      '-b',
      String(o.bs ?? 1024),
      '-d',
      root,
      img,
      `${o.mib ?? 16}M`,
    ],
    { stdio: 'ignore' },
  );
  if (o.index) spawnSync('e2fsck', ['-fyD', img], { stdio: 'ignore' });
  return img;
}

const dbgw = (img, cmd) => execFileSync('debugfs', ['-w', '-R', cmd, img], { stdio: 'ignore' });
const dbg = (img, cmd) =>
  execFileSync('debugfs', ['-R', cmd, img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();

function patch(img, offset, bytes) {
  const fd = openSync(img, 'r+');
  writeSync(fd, Buffer.from(bytes), 0, bytes.length, offset);
  closeSync(fd);
}

function variant(dir, base, name, fn) {
  const img = join(dir, `${name}.img`);
  copyFileSync(base, img);
  fn(img);
  return img;
}

function corpus(dir) {
  const D1 = '2024-01-02-03-04-05';
  const D2 = '2024-02-01-00-00-00';
  const std = tree(dir, { vms: 300, dates: [D1, D2] });
  const valid1k = mkfs(dir, std, { name: 'valid-1k', mib: 32 });
  const cases = [
    ['valid, 1 KiB blocks, 2x300 VMs', valid1k],
    ['valid, 4 KiB blocks', mkfs(dir, std, { name: 'valid-4k', bs: 4096, mib: 32 })],
    [
      'valid, 1 KiB, 3000-entry dirs (indirect blocks)',
      mkfs(dir, tree(dir, { vms: 3000, dates: [D1] }), { name: 'bigdir-1k', mib: 64 }),
    ],
    [
      'valid, 4 KiB, htree dirs (e2fsck -D)',
      mkfs(dir, tree(dir, { vms: 3000, dates: [D1] }), {
        name: 'htree-4k',
        bs: 4096,
        mib: 64,
        index: true,
      }),
    ],
    [
      'by-sr links to /etc/shadow, ../../.., another uuid, a long (slow) link',
      mkfs(
        dir,
        tree(dir, {
          vms: 20,
          dates: [D1],
          extra: (r, l) => {
            const d = join(r, 'metadata', D1, 'by-sr', l.srs[0]);
            symlinkSync('/etc/shadow', join(d, '11111111-1111-4111-8111-111111111111.vmmeta'));
            symlinkSync('../../..', join(d, '22222222-2222-4222-8222-222222222222.vmmeta'));
            for (const k of [0, 2]) rmSync(join(d, `${l.vms[k]}.vmmeta`));
            symlinkSync(`../../all/${l.vms[1]}.vmmeta`, join(d, `${l.vms[0]}.vmmeta`));
            symlinkSync(
              `../../all/./././././././././././././././././././${l.vms[2]}.vmmeta`,
              join(d, `${l.vms[2]}.vmmeta`),
            );
            mkdirSync(join(r, 'etc'));
            writeFileSync(join(r, 'etc', 'shadow'), 'root:x:0:0\n');
          },
        }),
        { name: 'symlinks' },
      ),
    ],
    [
      'marker is a symlink to /etc/m (holding 1)',
      mkfs(
        dir,
        tree(dir, {
          vms: 5,
          dates: [D1],
          marker: null,
          extra: (r) => {
            mkdirSync(join(r, 'etc'));
            writeFileSync(join(r, 'etc', 'm'), '1\n');
            symlinkSync('/etc/m', join(r, '.ctxs-metadata-backup'));
          },
        }),
        { name: 'marker-link' },
      ),
    ],
    [
      'dates 9999-01-01-00-00-00, 2024-02-30-.., latest',
      mkfs(
        dir,
        tree(dir, {
          vms: 5,
          dates: [D1, '9999-01-01-00-00-00', '2024-02-30-00-00-00', 'latest'],
        }),
        { name: 'dates' },
      ),
    ],
    [
      'non-UTF-8 names (root, metadata, all)',
      mkfs(
        dir,
        tree(dir, {
          vms: 5,
          dates: [D1],
          extra: (r) => {
            const raw = (p) => Buffer.from(p, 'latin1');
            writeFileSync(raw(`${r}/metadata/${D1}/all/\xff\xfe.vmmeta`), 'x');
            mkdirSync(raw(`${r}/metadata/2024-\xff1-01-00-00-00`));
            writeFileSync(raw(`${r}/\xe9t\xe9.db`), 'x');
          },
        }),
        { name: 'non-utf8' },
      ),
    ],
    [
      'marker missing',
      mkfs(dir, tree(dir, { vms: 5, dates: [D1], marker: null }), { name: 'no-marker' }),
    ],
    [
      'marker holds 2',
      mkfs(dir, tree(dir, { vms: 5, dates: [D1], marker: '2\n' }), { name: 'marker-2' }),
    ],
    [
      'truncated to 3 of 32 MiB',
      variant(dir, valid1k, 'trunc-3m', (i) => truncateSync(i, 3 * 2 ** 20)),
    ],
  ];
  // Truncated inside file data: everything up to the first block of a file of the newest
  // backup stays, so the metadata is intact and only data is missing.
  const blocks = dbg(
    valid1k,
    `blocks /metadata/${D2}/all/1000012b-aaaa-4bbb-8ccc-000000000299.vmmeta`,
  )
    .trim()
    .split(/\s+/)
    .map(Number);
  cases.push([
    `truncated inside file data (at block ${blocks[0]} of 32768)`,
    variant(dir, valid1k, 'trunc-data', (i) => truncateSync(i, blocks[0] * 1024)),
    valid1k,
  ]);
  cases.push([
    'needs_recovery set (journal not replayed)',
    variant(dir, valid1k, 'recover', (i) => {
      const b = readFileSync(i).subarray(1024 + 96, 1024 + 100);
      patch(i, 1024 + 96, [b[0] | 0x4, b[1], b[2], b[3]]);
    }),
  ]);
  const raw = readFileSync(valid1k);
  const itable = raw.readUInt32LE(2048 + 8);
  const isz = raw.readUInt16LE(1024 + 88);
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 24;
  };
  cases.push([
    'inode table of group 0 overwritten with random bytes',
    variant(dir, valid1k, 'wreck-itable', (i) =>
      patch(
        i,
        itable * 1024,
        Array.from({ length: 64 * 1024 }, () => rnd()),
      ),
    ),
  ]);
  cases.push([
    'root inode: size 2 GiB',
    variant(dir, valid1k, 'root-size', (i) =>
      patch(i, itable * 1024 + isz + 4, [255, 255, 255, 127]),
    ),
  ]);
  cases.push([
    'root inode: block 0 outside the disk',
    variant(dir, valid1k, 'root-block', (i) =>
      patch(i, itable * 1024 + isz + 40, [255, 255, 255, 0]),
    ),
  ]);
  cases.push([
    'a .vmmeta claiming 1 TiB (size_high)',
    variant(dir, valid1k, 'huge-file', (i) =>
      dbgw(
        i,
        `sif /metadata/${D1}/all/10000000-aaaa-4bbb-8ccc-000000000000.vmmeta size 0x10000000000`,
      ),
    ),
  ]);
  cases.push([
    'a .vmmeta whose indirect block points at itself, 200 MiB',
    variant(dir, valid1k, 'ind-loop', (i) => {
      const f = `/metadata/${D1}/all/10000000-aaaa-4bbb-8ccc-000000000000.vmmeta`;
      const b = Number(dbg(i, `blocks ${f}`).trim().split(/\s+/)[0]);
      dbgw(i, `sif ${f} block[IND] ${b}`);
      dbgw(i, `sif ${f} size ${200 * 2 ** 20}`);
      patch(
        i,
        b * 1024,
        Array.from({ length: 1024 }, (_, k) => (k % 4 === 0 ? b & 255 : k % 4 === 1 ? b >> 8 : 0)),
      );
    }),
  ]);
  cases.push([
    'directory loop: /metadata/<date> is the root',
    variant(dir, valid1k, 'dir-loop', (i) => dbgw(i, 'link / /metadata/2024-03-01-00-00-00')),
  ]);
  cases.push([
    'bad directory entry (rec_len 0) in all/',
    variant(dir, valid1k, 'bad-dirent', (i) => {
      const b = Number(dbg(i, `blocks /metadata/${D1}/all`).trim().split(/\s+/)[0]);
      // Third entry of the first block: after "." (12 bytes) and ".." (12 bytes).
      patch(i, b * 1024 + 24 + 4, [0, 0]);
    }),
  ]);
  cases.push([
    'ext4 (extents), otherwise valid',
    mkfs(dir, std, { name: 'ext4', type: 'ext4', bs: 4096, mib: 32 }),
  ]);
  for (let k = 0; k < 6; k++) {
    cases.push([
      `fuzzed ${k + 1}: 16 byte flips in the first 300 KiB`,
      variant(dir, valid1k, `fuzz-${k}`, (i) => {
        const b = readFileSync(i);
        for (let n = 0; n < 16; n++) {
          const at = ((rnd() << 16) | (rnd() << 8) | rnd()) % (300 * 1024);
          b[at] ^= 1 + (rnd() % 255);
        }
        writeFileSync(i, b);
      }),
    ]);
  }
  return cases;
}

function sha(p) {
  return h256(readFileSync(p));
}

function runChild(reader, img) {
  const before = sha(img);
  const r = spawnSync(process.execPath, [SELF, '--child', reader, img], {
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 16 * 2 ** 20,
  });
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
  const res = lines.find((l) => 'ms' in l) ?? null;
  const unmounting = lines.some((l) => l.unmounting);
  const done = lines.some((l) => l.done);
  const crash = (
    r.stderr.split('\n').find((l) => l.length < 300 && /^\w*Error\b/.test(l)) ?? `exit ${r.status}`
  ).slice(0, 80);
  let text;
  if (r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGTERM') text = 'KILLED after 60 s';
  else if (!res) text = `CRASH: ${crash}`;
  else {
    text = res.ok
      ? `ok ${res.dates} dates, ${res.vms} VMs, ${res.skipped} skipped${res.warnings ? ', warned' : ''} [${res.digest}]`
      : `error ${res.error}`;
    if (unmounting && !done) text += `; then umount CRASHED (${crash})`;
    if (res.overlayWrites) text += `; wrote ${res.overlayWrites} B to its overlay`;
  }
  return {
    text,
    ms: res ? res.ms : null,
    rss: res?.rssMiB ?? null,
    digest: res?.ok ? res.digest : null,
    unchanged: sha(img) === before,
  };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'legacy-readers-'));
  try {
    const t0 = Date.now();
    const cases = corpus(dir);
    process.stderr.write(`corpus: ${cases.length} images in ${Date.now() - t0} ms\n`);
    const fmtMs = (x) => (x === null ? '-' : `${x.toFixed(0)} ms`);
    const out = [
      '| image | ours | ms | MiB | ext2fs (FileDisk ro) | ms | MiB | ext2fs + short-read check | ms | same bytes | sha256 unchanged (ours/ext2fs/checked) |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
    ];
    const only = process.env.ONLY ?? '';
    for (const [name, img, intact] of cases.filter(([n]) => n.includes(only))) {
      const o = runChild('ours', img);
      const e = runChild('ext2fs', img);
      const c = runChild('ext2fs+check', img);
      let same = o.digest && e.digest ? (o.digest === e.digest ? 'yes' : 'NO') : '-';
      if (intact && e.digest) {
        const ref = runChild('ext2fs', intact);
        same = `ext2fs vs intact image: ${ref.digest === e.digest ? 'same' : 'DIFFERENT'}`;
      }
      const yn = (b) => (b ? 'yes' : 'NO');
      out.push(
        `| ${name} | ${o.text} | ${fmtMs(o.ms)} | ${o.rss ?? '-'} | ${e.text} | ${fmtMs(e.ms)} | ${e.rss ?? '-'} | ${c.text} | ${fmtMs(c.ms)} | ${same} | ${yn(o.unchanged)}/${yn(e.unchanged)}/${yn(c.unchanged)} |`,
      );
      process.stderr.write('.');
    }
    process.stderr.write(`\ndone in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    console.log(out.join('\n'));
  } finally {
    if (process.env.KEEP_CORPUS) process.stderr.write(`corpus kept in ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
else await main();
