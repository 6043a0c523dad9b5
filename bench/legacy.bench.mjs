// Over 400 lines on purpose: one benchmark that builds its own image and runs each job through
// our reader and through debugfs (three ways), side by side in one file so the two stay the same job.
// Reading a legacy backup image (issue 9): a 1 GiB ext3 image (4 KiB blocks, as
// `mkfs.ext3 -j -F` makes at that size) holding 12 dated backups of 1,000 VMs, laid out as
// xe-backup-metadata wrote it. Two jobs, each done by our user-space reader and by
// `debugfs -R` in the same run, on the same image, with a warm page cache, median of RUNS:
//   (a) list: check the marker, list the backups and count the VMs of each;
//   (b) extract one backup: write every all/<uuid>.vmmeta and SRMETA.xml to a folder.
// The image is built once (mke2fs -t ext3 -b 4096 -d, then e2fsck -fyD to hash-index the large
// directories as the kernel did when the old scripts wrote them) and cached under os.tmpdir()
// keyed by a hash of the parameters and of this file's source; its sha256 is taken at build
// time and checked after the runs. Extracted files go to /dev/shm (tmpfs) when there is one, for
// both sides: on this box's disk the 1,000 file creations alone cost ~0.8 s and hide the readers.
// debugfs is also timed as `debugfs -f` (one process reads a command list), the cheapest way
// for it to do the listing job.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  existsSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImage, openLegacyDisk } from '@xsmeta/legacy-compat';
import { row, runIfMain, timeMs } from './lib.mjs';

const P = {
  sizeMiB: 1024,
  blockSize: 4096,
  backups: 12,
  vms: 1000,
  srs: 4,
  minKiB: 10,
  maxKiB: 40,
  seed: 20240914,
};
const RUNS = 7;
const BENCH = 'legacy (issue 9)';
const DATE = /^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/;
const VMMETA = /^[0-9a-f-]{36}\.vmmeta$/;

/** A small deterministic PRNG (mulberry32), so the same parameters give the same tree. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function uuidFrom(rnd) {
  const w = () =>
    Math.floor(rnd() * 2 ** 32)
      .toString(16)
      .padStart(8, '0');
  const h = w() + w() + w() + w();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
}

/** A one-member ustar archive holding `ova.xml`, the shape of xapi's /export_metadata. */
function tarOf(name, body, mtime) {
  const h = Buffer.alloc(512);
  const put = (s, at, len) => h.write(s.slice(0, len), at, 'latin1');
  const oct = (n, len) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  put(name, 0, 100);
  put(oct(0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(body.length, 12), 124, 12);
  put(oct(mtime, 12), 136, 12);
  h.fill(0x20, 148, 156);
  put('0', 156, 1);
  put('ustar\x0000', 257, 8);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  const pad = (512 - (body.length % 512)) % 512;
  return Buffer.concat([h, body, Buffer.alloc(pad + 1024)]);
}

const member = (n, v) => `<member><name>${n}</name><value>${v}</value></member>`;

/** An ova.xml of about `target` bytes: the VM record, then VBD/VIF/VDI records. */
function ovaXml(rnd, vm, sr, date, target) {
  const parts = [
    `<?xml version="1.0"?><value><struct>${member('version', '<struct/>')}<member><name>objects</name><value><array><data>`,
    `<value><struct>${member('class', 'VM')}${member('id', `OpaqueRef:${vm}`)}<member><name>snapshot</name><value><struct>`,
    member('uuid', vm),
    member('name_label', `vm-${vm.slice(0, 8)}`),
    member('name_description', `backed up ${date}`),
    member('power_state', rnd() < 0.7 ? 'Running' : 'Halted'),
    member('memory_static_max', String(2 ** (29 + Math.floor(rnd() * 5)))),
    member('VCPUs_max', String(1 + Math.floor(rnd() * 8))),
    member('other_config', `<struct>${member('backup-date', date)}</struct>`),
    '</struct></value></member></struct></value>',
  ];
  let size = parts.reduce((n, s) => n + s.length, 0);
  for (let k = 0; size < target - 200; k++) {
    const cls = ['VBD', 'VIF', 'VDI'][k % 3];
    const s =
      `<value><struct>${member('class', cls)}${member('id', `OpaqueRef:${uuidFrom(rnd)}`)}` +
      `<member><name>snapshot</name><value><struct>${member('uuid', uuidFrom(rnd))}` +
      `${member('SR', `OpaqueRef:${sr}`)}${member('device', `xvd${'abcdefgh'[k % 8]}`)}` +
      `${member('virtual_size', String(Math.floor(rnd() * 2 ** 36)))}` +
      `${member('other_config', `<struct>${member('k', 'v'.repeat(Math.floor(rnd() * 200)))}</struct>`)}` +
      '</struct></value></member></struct></value>';
    parts.push(s);
    size += s.length;
  }
  parts.push('</data></array></value></member></struct></value>');
  return Buffer.from(parts.join(''));
}

/** The folder xe-backup-metadata would have left on the VDI; returns what it holds. */
function buildTree(tree, p) {
  const rnd = prng(p.seed);
  const pool = uuidFrom(rnd);
  const srs = Array.from({ length: p.srs }, () => uuidFrom(rnd));
  // 5% templates without a disk (in all/, not in by-sr/), the rest on one of the SRs.
  const vms = Array.from({ length: p.vms }, () => ({
    uuid: uuidFrom(rnd),
    sr: rnd() < 0.05 ? null : srs[Math.floor(rnd() * srs.length)],
    kib: p.minKiB + rnd() * (p.maxKiB - p.minKiB - 1),
  }));
  const t0 = Date.UTC(2024, 8, 1, 2, 0, 0);
  const dates = Array.from({ length: p.backups }, (_, i) => {
    const d = new Date(t0 + i * 7 * 86_400_000 + Math.floor(rnd() * 3600) * 1000);
    return d.toISOString().slice(0, 19).replace(/[T:]/g, '-');
  });
  mkdirSync(join(tree, 'conf'), { recursive: true });
  writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
  writeFileSync(
    join(tree, 'conf', uuidFrom(rnd)),
    `/var/run/pool-backup-${pool}/${pool}.db {\n    rotate ${p.backups}\n    missingok\n}\n`,
  );
  // Pool database dumps, newest without a suffix (one per backup, ~2 MiB each).
  for (let g = 0; g < p.backups; g++) {
    const rows = vms.map(
      (v) =>
        `<row ref="OpaqueRef:${v.uuid}" uuid="${v.uuid}" name__label="vm-${v.uuid.slice(0, 8)}" generation="${g}" other_config="${'x'.repeat(Math.floor(rnd() * 3000))}"/>`,
    );
    writeFileSync(
      join(tree, g === 0 ? `${pool}.db` : `${pool}.db.${g}`),
      `<database><manifest/><table name="VM">${rows.join('')}</table></database>`,
    );
  }
  let files = 0;
  let bytes = 0;
  for (const date of dates) {
    const d = join(tree, 'metadata', date);
    mkdirSync(join(d, 'all'), { recursive: true });
    for (const sr of srs) mkdirSync(join(d, 'by-sr', sr), { recursive: true });
    const srmeta = srs
      .map((sr) => `<sr uuid="${sr}" name_label="SR ${sr.slice(0, 4)}" name_description=""/>`)
      .concat(vms.filter((v) => v.sr).map((v) => `<vdi uuid="${v.uuid}" name_label="disk"/>`));
    writeFileSync(join(d, 'SRMETA.xml'), `<meta>${srmeta.join('\n')}</meta>\n`);
    for (const v of vms) {
      // Each backup's file differs a little from the last (sizes drift by up to 1 KiB).
      const target = Math.round((v.kib + rnd()) * 1024) - 2048;
      const f = tarOf('ova.xml', ovaXml(rnd, v.uuid, v.sr ?? '', date, target), 1_700_000_000);
      writeFileSync(join(d, 'all', `${v.uuid}.vmmeta`), f);
      files++;
      bytes += f.length;
      if (v.sr)
        symlinkSync(`../../all/${v.uuid}.vmmeta`, join(d, 'by-sr', v.sr, `${v.uuid}.vmmeta`));
    }
  }
  return { dates: [...dates].reverse(), vmsPerBackup: p.vms, files, bytes };
}

/** Builds the image, or reuses the one a previous run cached. */
async function image() {
  const key = createHash('sha256')
    .update(JSON.stringify(P))
    .update(readFileSync(new URL(import.meta.url)))
    .digest('hex')
    .slice(0, 16);
  const img = join(tmpdir(), `xsmeta-legacy-bench-${key}.img`);
  const info = `${img}.json`;
  if (existsSync(img) && existsSync(info)) {
    const m = JSON.parse(readFileSync(info, 'utf8'));
    process.stderr.write(`legacy bench: reusing ${img} (built in ${m.buildMs} ms earlier)\n`);
    return { img, ...m, cached: true };
  }
  // Images of other parameters (or of an older generator) are not reused: remove them.
  for (const f of readdirSync(tmpdir()))
    if (
      /^xsmeta-legacy-bench-[0-9a-f]{16}\.img(\.json|\.tmp-\d+)?$/.test(f) &&
      !f.startsWith(`xsmeta-legacy-bench-${key}`)
    )
      rmSync(join(tmpdir(), f), { force: true });
  const t0 = Date.now();
  // The tree goes to tmpfs when there is one; the image is written next to its final name.
  const dir = mkdtempSync(
    join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bench-legacy-tree-'),
  );
  const tmp = `${img}.tmp-${process.pid}`;
  try {
    const m = buildTree(join(dir, 'tree'), P);
    const tTree = Date.now();
    const b = P.blockSize;
    execFileSync(
      'mke2fs',
      ['-q', '-F', '-t', 'ext3', '-b', String(b), '-d', join(dir, 'tree'), tmp, `${P.sizeMiB}M`],
      { stdio: 'ignore' },
    );
    const tMkfs = Date.now();
    // e2fsck exits 1 when it changed something (here: it indexed the directories).
    const fsck = spawnSync('e2fsck', ['-fyD', tmp], { stdio: 'ignore' });
    if (fsck.status !== 0 && fsck.status !== 1) throw new Error(`e2fsck -fyD: ${fsck.status}`);
    const buildMs = Date.now() - t0;
    const steps = `tree ${tTree - t0} ms, mke2fs -d ${tMkfs - tTree} ms, e2fsck -fyD ${Date.now() - tMkfs} ms`;
    const meta = { ...m, buildMs, steps, sha256: await sha256(tmp) };
    renameSync(tmp, img);
    writeFileSync(info, JSON.stringify(meta));
    process.stderr.write(
      `legacy bench: built ${img} in ${buildMs} ms (${steps}; ${m.files} files, ${(m.bytes / 2 ** 20).toFixed(0)} MiB)\n`,
    );
    return { img, ...meta, cached: false };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(tmp, { force: true });
  }
}

async function sha256(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path, { highWaterMark: 4 * 2 ** 20 })) h.update(c);
  return h.digest('hex');
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function debugfs(img, cmd) {
  const r = spawnSync('debugfs', ['-R', cmd, img], {
    encoding: 'latin1',
    maxBuffer: 256 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`debugfs -R ${cmd}: ${r.stderr}`);
  return r.stdout;
}

/** One debugfs process running `cmds`; returns each command's output. */
function debugfsF(img, cmds) {
  const r = spawnSync('debugfs', ['-f', '-', img], {
    input: cmds.map((c) => `${c}\n`).join(''),
    encoding: 'latin1',
    maxBuffer: 256 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`debugfs -f: ${r.stderr}`);
  return r.stdout.split(/^debugfs: .*$/m).slice(1);
}

/** `ls -p` lines are /ino/mode/uid/gid/name/size/. */
const lsNames = (out, mode) =>
  out
    .split('\n')
    .map((l) => l.split('/'))
    .filter((f) => f.length >= 7 && f[2].startsWith(mode))
    .map((f) => f[5]);

/**
 * The same ReadOnlyDevice as openImage's, over fs.readSync: shows how much of our time is the
 * per-read round trip through libuv's thread pool rather than the parsing.
 */
function openSyncImage(path) {
  const fd = openSync(path, 'r');
  return {
    size: fstatSync(fd).size,
    async read(offset, length) {
      const buf = new Uint8Array(length);
      for (let done = 0; done < length; ) {
        const n = readSync(fd, buf, done, length - done, offset + done);
        if (n === 0) throw new Error(`short read at ${offset + done}`);
        done += n;
      }
      return buf;
    },
    async close() {
      closeSync(fd);
    },
  };
}

async function oursList(img, open = openImage) {
  const dev = await open(img);
  try {
    const disk = await openLegacyDisk(dev);
    const out = [];
    for (const d of disk.dates) out.push([d, (await disk.backup(d)).vms.length]);
    return out;
  } finally {
    await dev.close();
  }
}

function debugfsList(img) {
  if (debugfs(img, 'cat /.ctxs-metadata-backup').trim() !== '1') throw new Error('no marker');
  const dates = lsNames(debugfs(img, 'ls -p /metadata'), '04')
    .filter((n) => DATE.test(n))
    .sort()
    .reverse();
  return dates.map((d) => [
    d,
    lsNames(debugfs(img, `ls -p /metadata/${d}/all`), '10').filter((n) => VMMETA.test(n)).length,
  ]);
}

function debugfsListF(img) {
  const [marker, meta] = debugfsF(img, ['cat /.ctxs-metadata-backup', 'ls -p /metadata']);
  if (marker.trim() !== '1') throw new Error('no marker');
  const dates = lsNames(meta, '04')
    .filter((n) => DATE.test(n))
    .sort()
    .reverse();
  const outs = debugfsF(
    img,
    dates.map((d) => `ls -p /metadata/${d}/all`),
  );
  return dates.map((d, i) => [d, lsNames(outs[i], '10').filter((n) => VMMETA.test(n)).length]);
}

// Files are written with writeFileSync on both sides (debugfs writes synchronously too):
// fs.promises.writeFile costs ~0.1-0.2 ms a file here, more than reading it.
async function oursExtract(img, date, out, open = openImage) {
  const dev = await open(img);
  try {
    const disk = await openLegacyDisk(dev);
    const b = await disk.backup(date);
    mkdirSync(join(out, 'all'), { recursive: true });
    for await (const v of b.exports()) writeFileSync(join(out, 'all', `${v.uuid}.vmmeta`), v.data);
    const sr = await b.srmeta();
    if (sr) writeFileSync(join(out, 'SRMETA.xml'), sr);
  } finally {
    await dev.close();
  }
}

function debugfsExtract(img, date, out) {
  mkdirSync(out, { recursive: true });
  debugfs(img, `rdump /metadata/${date}/all ${out}`);
  debugfs(img, `dump /metadata/${date}/SRMETA.xml ${out}/SRMETA.xml`);
}

/** The files of an extracted backup, hashed in name order. */
function digestDir(out) {
  const h = createHash('sha256');
  const names = readdirSync(join(out, 'all')).sort();
  for (const n of names) h.update(n).update(readFileSync(join(out, 'all', n)));
  h.update(readFileSync(join(out, 'SRMETA.xml')));
  return { files: names.length, digest: h.digest('hex') };
}

export async function run() {
  const im = await image();
  const { img } = im;
  const work = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'bench-legacy-'));
  try {
    const date = im.dates[Math.floor(im.dates.length / 2)];
    // Warm-up and correctness, untimed: both readers must agree with the generator.
    const want = JSON.stringify(im.dates.map((d) => [d, im.vmsPerBackup]));
    const a = JSON.stringify(await oursList(img));
    const b = JSON.stringify(debugfsList(img));
    const c = JSON.stringify(debugfsListF(img));
    if (a !== want || b !== want || c !== want)
      throw new Error(`list mismatch:\n${a}\n${b}\n${c}\n${want}`);
    await oursExtract(img, date, join(work, 'o'));
    debugfsExtract(img, date, join(work, 'd'));
    const da = digestDir(join(work, 'o'));
    const db = digestDir(join(work, 'd'));
    if (da.digest !== db.digest || da.files !== im.vmsPerBackup)
      throw new Error(`extract mismatch: ${JSON.stringify([da, db])}`);
    const extracted = statSize(join(work, 'o'));

    if (JSON.stringify(await oursList(img, openSyncImage)) !== want) throw new Error('sync list');
    const t = { ol: [], sl: [], dl: [], df: [], oe: [], se: [], de: [] };
    for (let k = 0; k < RUNS; k++) {
      t.ol.push(await timeMs(() => oursList(img)));
      t.sl.push(await timeMs(() => oursList(img, openSyncImage)));
      t.dl.push(await timeMs(async () => debugfsList(img)));
      t.df.push(await timeMs(async () => debugfsListF(img)));
      const [o, s, d] = ['o', 's', 'd'].map((x) => join(work, `${x}${k}`));
      t.oe.push(await timeMs(() => oursExtract(img, date, o)));
      t.se.push(await timeMs(() => oursExtract(img, date, s, openSyncImage)));
      t.de.push(await timeMs(async () => debugfsExtract(img, date, d)));
      for (const x of [o, s, d]) rmSync(x, { recursive: true, force: true });
    }
    const unchanged = (await sha256(img)) === im.sha256;
    const size = `${(statSync(img).size / 2 ** 30).toFixed(0)} GiB image, ${P.blockSize / 1024} KiB blocks`;
    return [
      row({
        bench: BENCH,
        metric: `build the ${size}, ${im.files} .vmmeta (${(im.bytes / 2 ** 20).toFixed(0)} MiB)${im.cached ? ', cached from an earlier run' : ''}`,
        ours: im.buildMs / 1000,
        unit: 's',
        goal: 'mke2fs -d + e2fsck -D',
      }),
      row({
        bench: BENCH,
        metric: `list ${im.dates.length} backups + VM count of each (${im.vmsPerBackup} VMs), median of ${RUNS}`,
        ours: median(t.ol),
        baseline: median(t.dl),
        unit: 'ms',
        goal: `vs debugfs -R (${2 + im.dates.length} processes)`,
        better: 'lower',
      }),
      row({
        bench: BENCH,
        metric: `list ${im.dates.length} backups + VM count of each, median of ${RUNS}`,
        ours: median(t.ol),
        baseline: median(t.df),
        unit: 'ms',
        goal: 'vs debugfs -f (2 processes)',
        better: 'lower',
      }),
      row({
        bench: BENCH,
        metric: `extract one backup to files (${im.vmsPerBackup} .vmmeta + SRMETA.xml, ${(extracted / 2 ** 20).toFixed(1)} MiB), median of ${RUNS}`,
        ours: median(t.oe),
        baseline: median(t.de),
        unit: 'ms',
        goal: 'vs debugfs -R rdump + dump',
        better: 'lower',
      }),
      row({
        bench: BENCH,
        metric: `list, ours over a readSync device instead of openImage, median of ${RUNS}`,
        ours: median(t.sl),
        baseline: median(t.dl),
        unit: 'ms',
        goal: 'vs debugfs -R (informative)',
        better: 'lower',
      }),
      row({
        bench: BENCH,
        metric: `extract, ours over a readSync device instead of openImage, median of ${RUNS}`,
        ours: median(t.se),
        baseline: median(t.de),
        unit: 'ms',
        goal: 'vs debugfs -R (informative)',
        better: 'lower',
      }),
      row({
        bench: BENCH,
        metric: 'image sha256 after all runs = sha256 at build',
        ours: unchanged ? 1 : 0,
        unit: 'bool',
        goal: '1',
        pass: unchanged,
      }),
    ];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function statSize(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile()) n += statSync(join(e.parentPath ?? e.path, e.name)).size;
  return n;
}

await runIfMain(import.meta.url, run);
