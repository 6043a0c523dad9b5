// Reading a legacy backup image (issue 9): list and extract one backup with our user-space
// reader vs debugfs doing the same, in the same run. The image: 12 dated backups of 1,000 VMs
// made by mke2fs -t ext3 -d (256 MiB, 1 KiB blocks; the 1 GiB would take minutes to
// build here, and both readers touch only the metadata they need).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openImage, openLegacyDisk } from '@xsmeta/legacy-compat';
import { row, runIfMain, timeMs } from './lib.mjs';

const VMS = 1000;
const DATES = Array.from(
  { length: 12 },
  (_, i) => `2024-${String(i + 1).padStart(2, '0')}-01-02-00-00`,
);

function uuid(i) {
  const h = ((i * 2654435761) >>> 0).toString(16).padStart(8, '0');
  return `${h}-0000-4000-8000-${String(i).padStart(12, '0')}`;
}

export async function run() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-legacy-'));
  try {
    const tree = join(dir, 'tree');
    const sr = uuid(999999);
    mkdirSync(tree);
    writeFileSync(join(tree, '.ctxs-metadata-backup'), '1\n');
    const body = Buffer.alloc(8 * 1024, 0x61);
    for (const date of DATES) {
      const d = join(tree, 'metadata', date);
      mkdirSync(join(d, 'all'), { recursive: true });
      mkdirSync(join(d, 'by-sr', sr), { recursive: true });
      writeFileSync(join(d, 'SRMETA.xml'), '<meta/>');
      for (let i = 0; i < VMS; i++) {
        writeFileSync(join(d, 'all', `${uuid(i)}.vmmeta`), body);
        symlinkSync(`../../all/${uuid(i)}.vmmeta`, join(d, 'by-sr', sr, `${uuid(i)}.vmmeta`));
      }
    }
    const img = join(dir, 'disk.img');
    execFileSync('mke2fs', ['-q', '-F', '-t', 'ext3', '-b', '1024', '-d', tree, img, '256M'], {
      stdio: 'ignore',
    });
    const date = DATES[5];
    let listed = 0;
    const oursList = await timeMs(async () => {
      const dev = await openImage(img);
      const disk = await openLegacyDisk(dev);
      listed = disk.dates.length;
      await dev.close();
    });
    const debugfsList = await timeMs(async () => {
      execFileSync('debugfs', ['-R', 'ls -l /metadata', img], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      for (const d of DATES)
        execFileSync('debugfs', ['-R', `ls /metadata/${d}/all`, img], {
          stdio: ['ignore', 'pipe', 'ignore'],
          maxBuffer: 64 * 1024 * 1024,
        });
    });
    let bytes = 0;
    const oursExtract = await timeMs(async () => {
      const dev = await openImage(img);
      const disk = await openLegacyDisk(dev);
      const b = await disk.backup(date);
      for (const v of b.vms) bytes += (await v.read()).length;
      await dev.close();
    });
    const out = join(dir, 'out');
    mkdirSync(out);
    const debugfsExtract = await timeMs(async () => {
      execFileSync('debugfs', ['-R', `rdump /metadata/${date} ${out}`, img], { stdio: 'ignore' });
    });
    return [
      row({
        bench: 'legacy (issue 9)',
        metric: `list ${listed} backups of ${VMS} VMs (256 MiB image)`,
        ours: oursList,
        baseline: debugfsList,
        unit: 'ms',
        goal: 'vs debugfs -R ls',
        better: 'lower',
      }),
      row({
        bench: 'legacy (issue 9)',
        metric: `extract one backup (${(bytes / 1048576).toFixed(1)} MiB)`,
        ours: oursExtract,
        baseline: debugfsExtract,
        unit: 'ms',
        goal: 'vs debugfs -R rdump',
        better: 'lower',
      }),
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
