// Issue 19: the ring against dd on the same bytes, alternating rounds, on an ext4 file.
//   append: one Ring.append of a 16 MiB record (the record, a flush, then the root that commits
//           it, a second flush: packages/vdi-store/FORMAT.md's order) against one
//           `dd conv=fsync,notrunc` of the same 16 MiB into the same place of the image
//   verify: Ring.verify of every record, page cache dropped first (cold), against
//           `dd of=/dev/null bs=1M` of the same byte range, cache dropped the same way
// The cache of the image is dropped with `dd iflag=nocache count=0` (posix_fadvise DONTNEED).
// BENCH_ROUNDS (default 3) rounds; each ratio is the median of the per-round ratios.
// BENCH_RING_BEFORE=path/to/an/older/build/index.js adds that build as a third side (to
// measure a change before/after in the same run).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '@xsmeta/vdi-store';
import { row, runIfMain } from './lib.mjs';

const MiB = 1024 * 1024;
const RECORD = 16 * MiB;
const COUNT = 12;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IDENTITY = {
  vdiUuid: '581017e4-81dd-5c81-adf6-59e789731929',
  srUuid: '00000000-0000-0000-0000-000000000000',
};

function dd(args) {
  const r = spawnSync('dd', [...args, 'status=none']);
  if (r.status !== 0) throw new Error(`dd ${args.join(' ')}: ${r.stderr}`);
}
const dropCache = (path) => dd([`if=${path}`, 'iflag=nocache', 'count=0']);
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function blankImage(path, size) {
  await writeFile(path, '');
  await truncate(path, size);
  const fh = await open(path, 'r+');
  const zeros = Buffer.alloc(8 * MiB);
  for (let o = 0; o < size; o += zeros.length)
    await fh.write(zeros, 0, Math.min(zeros.length, size - o), o);
  await fh.datasync();
  await fh.close();
}

/** Our side of one round: fresh ring, 12 appends (timed), then a cold verify (timed). */
async function ours(img, data, { openFileDevice, Ring } = current) {
  const ring = await Ring.format(await openFileDevice(img), IDENTITY);
  const label = new TextEncoder().encode('{}');
  let appendMs = 0;
  const places = [];
  for (const d of data) {
    const t0 = process.hrtime.bigint();
    const rec = await ring.append({ label, data: d });
    appendMs += ms(t0);
    places.push(rec.seq);
  }
  await ring.close();
  dropCache(img);
  const t0 = process.hrtime.bigint();
  const r = await Ring.open(await openFileDevice(img, { readOnly: true }), { readOnly: true });
  const report = await r.verify();
  const verifyMs = ms(t0);
  await r.close();
  if (!report.ok || report.records.length !== COUNT) throw new Error('verify failed');
  return { appendMs, verifyMs };
}

/** The dd side: the same 12 records written with conv=fsync one by one, then a cold read. */
function baseline(img, src) {
  let appendMs = 0;
  for (let i = 0; i < COUNT; i++) {
    const t0 = process.hrtime.bigint();
    dd([
      `if=${src}`,
      `of=${img}`,
      'bs=1M',
      `skip=${i * 16}`,
      `seek=${1 + i * 16}`,
      'count=16',
      'conv=fsync,notrunc',
    ]);
    appendMs += ms(t0);
  }
  dropCache(img);
  const t0 = process.hrtime.bigint();
  dd([`if=${img}`, 'of=/dev/null', 'bs=1M', `count=${1 + COUNT * 16}`]);
  return { appendMs, verifyMs: ms(t0) };
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ring-dd-'));
  try {
    const img = join(dir, 'disk.img');
    const src = join(dir, 'records.bin');
    const data = Array.from({ length: COUNT }, () => new Uint8Array(randomBytes(RECORD)));
    writeFileSync(src, Buffer.concat(data));
    const size = COUNT * RECORD + 64 * MiB;
    const before = process.env.BENCH_RING_BEFORE
      ? await import(pathToFileURL(process.env.BENCH_RING_BEFORE).href)
      : null;
    const o = [];
    const b = [];
    const old = [];
    const sides = before ? ['ours', 'dd', 'before'] : ['ours', 'dd'];
    for (let i = 0; i < ROUNDS; i++) {
      for (const side of i % 2 === 0 ? sides : [...sides].reverse()) {
        await blankImage(img, size);
        if (side === 'ours') o.push(await ours(img, data));
        else if (side === 'before') old.push(await ours(img, data, before));
        else b.push(baseline(img, src));
      }
    }
    const mb = (COUNT * RECORD) / MiB;
    const rows = [];
    for (const [k, metric, goal] of [
      ['appendMs', `append, ${COUNT} records of 16 MiB: ring / dd conv=fsync`, 0.7],
      ['verifyMs', `verify, ${COUNT} records of 16 MiB, cold: ring / dd read`, 0.7],
    ]) {
      const ratios = o.map((x, i) => b[i][k] / x[k]);
      const r = row({
        bench: 'ring vs dd (issue 19)',
        metric: `${metric} (median of ${ROUNDS}, range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
        ours: mb / (median(o.map((x) => x[k])) / 1000),
        baseline: mb / (median(b.map((x) => x[k])) / 1000),
        unit: 'MB/s',
        goal: `>= ${goal}`,
      });
      r.ratio = median(ratios);
      r.pass = r.ratio >= goal;
      rows.push(r);
      if (before) {
        const was = old.map((x, i) => b[i][k] / x[k]);
        rows.push(
          row({
            bench: 'ring vs dd (issue 19)',
            metric: `  the same, build before the change (median ${median(was).toFixed(2)}, range ${Math.min(...was).toFixed(2)}-${Math.max(...was).toFixed(2)})`,
            ours: mb / (median(old.map((x) => x[k])) / 1000),
            baseline: mb / (median(b.map((x) => x[k])) / 1000),
            unit: 'MB/s',
          }),
        );
      }
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
