// Ring throughput against raw sequential I/O on the same file, in the same run (issue 3).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openFileDevice, Ring, writeArchive } from '@xsmeta/vdi-store';
import { row, runIfMain, timeMs } from './lib.mjs';

const MiB = 1024 * 1024;
const RECORD = 16 * MiB;
const COUNT = 12;

/** Synthetic ova.xml-like XML-RPC exports: ~120 fields, per-VM uuids and names. */
function fakeExport(i) {
  const members = [];
  for (let f = 0; f < 400; f++) {
    const v =
      f % 9 === 0
        ? `${(i * 2654435761 + f * 40503) >>> 0}-${f}`
        : f % 5 === 0
          ? `OpaqueRef:${i}-${f}`
          : `value-${f % 37}`;
    members.push(`<member><name>field_${f}</name><value>${v}</value></member>`);
  }
  return Buffer.from(`<?xml version="1.0"?><value><struct>${members.join('')}</struct></value>`);
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ring-'));
  const rows = [];
  try {
    const path = join(dir, 'disk.img');
    const size = COUNT * RECORD + 64 * MiB;
    const data = Array.from({ length: COUNT }, () => new Uint8Array(randomBytes(RECORD)));
    // Raw baseline: sequential writes of the same bytes, one fsync per record.
    await writeFile(path, '');
    await truncate(path, size);
    const fh = await open(path, 'r+');
    // Allocate every block first so that neither side pays for the file system's allocation.
    const zeros = Buffer.alloc(8 * MiB);
    for (let o = 0; o < size; o += zeros.length)
      await fh.write(zeros, 0, Math.min(zeros.length, size - o), o);
    await fh.datasync();
    const rawWrite = await timeMs(async () => {
      for (let i = 0; i < COUNT; i++) {
        await fh.write(data[i], 0, RECORD, 256 * 1024 + i * RECORD);
        await fh.datasync();
      }
    });
    const buf = Buffer.alloc(MiB);
    const rawRead = await timeMs(async () => {
      for (let o = 0; o < COUNT * RECORD; o += MiB) await fh.read(buf, 0, MiB, 256 * 1024 + o);
    });
    await fh.close();
    const dev = await openFileDevice(path);
    const ring = await Ring.format(dev, {
      vdiUuid: '581017e4-81dd-5c81-adf6-59e789731929',
      srUuid: '00000000-0000-0000-0000-000000000000',
    });
    const label = new TextEncoder().encode('{}');
    const append = await timeMs(async () => {
      for (let i = 0; i < COUNT; i++) await ring.append({ label, data: data[i] });
    });
    const verify = await timeMs(() => ring.verify());
    await ring.close();
    const mb = (COUNT * RECORD) / MiB;
    const appendMBs = mb / (append / 1000);
    const rawWMBs = mb / (rawWrite / 1000);
    rows.push(
      row({
        bench: 'ring',
        metric: 'append (16 MiB records, fsync)',
        ours: appendMBs,
        baseline: rawWMBs,
        unit: 'MB/s',
        goal: '>= 0.70 of raw write',
        pass: appendMBs / rawWMBs >= 0.7,
      }),
    );
    const verifyMBs = mb / (verify / 1000);
    const rawRMBs = mb / (rawRead / 1000);
    rows.push(
      row({
        bench: 'ring',
        metric: 'full verify',
        ours: verifyMBs,
        baseline: rawRMBs,
        unit: 'MB/s',
        goal: '>= 0.80 of raw read',
        pass: verifyMBs / rawRMBs >= 0.8,
      }),
    );
    // Listing a full ring: open reads the two root copies, list() reads nothing more.
    const full = await openFileDevice(path, { readOnly: true });
    let reads = 0;
    const counting = {
      ...full,
      size: full.size,
      readOnly: true,
      read: (o, n) => {
        reads++;
        return full.read(o, n);
      },
      close: () => full.close(),
    };
    let listed = 0;
    const openMs = await timeMs(async () => {
      const r = await Ring.open(counting, { readOnly: true });
      listed = r.list().length;
    });
    rows.push(
      row({
        bench: 'ring',
        metric: `open + list ${listed} records: reads`,
        ours: reads,
        unit: 'reads',
        goal: 'constant (2)',
        pass: reads === 2,
      }),
    );
    rows.push(
      row({
        bench: 'ring',
        metric: 'open + list time',
        ours: openMs,
        unit: 'ms',
        goal: '< 1 ms beyond open',
        better: 'lower',
      }),
    );
    await full.close();
    // The archive on XAPI-like exports.
    const parts = Array.from({ length: 1000 }, (_, i) => ({
      name: `vms/${i}.ova`,
      data: fakeExport(i),
    }));
    let summary;
    const packMs = await timeMs(async () => {
      summary = await writeArchive(parts);
    });
    rows.push(
      row({
        bench: 'archive',
        metric: 'stored / raw (1,000 exports)',
        ours: summary.storedBytes / summary.rawBytes,
        unit: 'ratio',
        goal: '<= 0.15',
        better: 'lower',
        pass: summary.storedBytes / summary.rawBytes <= 0.15,
      }),
    );
    rows.push(
      row({
        bench: 'archive',
        metric: 'compression speed',
        ours: summary.rawBytes / MiB / (packMs / 1000),
        unit: 'MB/s',
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

await runIfMain(import.meta.url, run);
