// Our backup of a simulated pool against the legacy method on the same simulator, in the same
// run (issue 6): the pool database dump plus one sequential export_metadata request per VM,
// each written uncompressed to a file. Both sides talk real HTTP to the simulator, which runs
// in its own process. Also writes bench/backup-scaling.svg (backup time against pool size).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XapiClient } from '@xsmeta/xapi';
import { row, runIfMain, timeMs } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const SIM = join(root, 'apps/xapi-sim/bin/xapi-sim.js');
const XSMETA = join(root, 'packages/cli/bin/xsmeta.js');
const MAIN_VMS = 1000;
const SIZES = [10, 100, 500, 1000, 2000];
const MiB = 1024 * 1024;

/**
 * Starts `xapi-sim` in a child process on state directory `dir` and resolves once it listens,
 * with its environment (DIR/env), the start time in ms and `stop()`. `sim` is the bin to run
 * (another build's, to compare).
 */
export async function startSim(dir, args, sim = SIM) {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [sim, '--state', dir, '--port', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`xapi-sim did not start: ${output}`)),
        60_000,
      );
      child.stderr.on('data', (d) => {
        output += d;
      });
      child.stdout.on('data', (d) => {
        output += d;
        if (output.includes('listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`xapi-sim exited with ${code}: ${output}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  const startMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const env = Object.fromEntries(
    readFileSync(join(dir, 'env'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => l.replace(/^export /, ''))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return { env, startMs, stop, pid: child.pid };
}

/**
 * Runs a Node script as a child process with `env` added; resolves with its stdout, wall time
 * (ms) and peak RSS (bytes), from /usr/bin/time when present, else from a preloaded hook that
 * writes process.resourceUsage().maxRSS at exit. Rejects on a non-zero exit status.
 */
export async function runNode(script, args, env, scratch) {
  const rssFile = join(scratch, `rss-${process.pid}-${Date.now()}`);
  let cmd;
  let argv;
  const hasTime = existsSync('/usr/bin/time');
  if (hasTime) {
    cmd = '/usr/bin/time';
    argv = ['-o', rssFile, '-f', '%M', process.execPath, script, ...args];
  } else {
    const hook = join(scratch, 'rss-hook.mjs');
    writeFileSync(
      hook,
      `import { writeFileSync } from 'node:fs';\nprocess.on('exit', () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`,
    );
    cmd = process.execPath;
    argv = ['--import', hook, script, ...args];
  }
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  const code = await new Promise((resolve) => child.once('close', resolve));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (code !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${code}: ${err}`);
  let rss = null;
  try {
    const kb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
    if (Number.isFinite(kb) && kb > 0) rss = kb * 1024;
  } catch {
    // no RSS figure: reported as missing
  }
  rmSync(rssFile, { force: true });
  return { out, err, ms, rss };
}

/** Our backup, as the operator runs it: `xsmeta backup --create --json`. */
export function ourBackup(env, stateDir, scratch) {
  return runNode(
    XSMETA,
    ['backup', '--create', '--json'],
    { ...env, XSMETA_STATE_DIR: stateDir },
    scratch,
  );
}

/** The VMs the legacy script exports: not dom0, not snapshots, not default templates. */
function backedUp(vm) {
  if (vm.is_control_domain || vm.is_a_snapshot) return false;
  return !(vm.is_a_template && vm.other_config?.default_template === 'true');
}

/**
 * The legacy method: the pool database dump, then one export_metadata request per VM, one
 * after the other, each written uncompressed to its own file under `out`. Returns the uuids.
 */
export async function legacyBackup(env, out) {
  const client = await XapiClient.connect({
    url: env.XSMETA_URL,
    username: env.XSMETA_USERNAME,
    password: env.XSMETA_PASSWORD,
  });
  try {
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'pool-database.xml'), await client.dumpDatabase());
    const vms = [...(await client.getAllRecords('VM')).values()].filter(backedUp);
    for (const vm of vms) {
      await writeFile(join(out, `${vm.uuid}.vmmeta`), await client.exportMetadata(vm));
    }
    return vms.map((vm) => vm.uuid);
  } finally {
    await client.logout();
  }
}

/** A line chart of backup time against pool size, as SVG text. */
function chart(points) {
  const W = 640;
  const H = 400;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 60;
  const maxX = Math.max(...points.map((p) => p.vms));
  const maxY = Math.max(...points.flatMap((p) => [p.ours, p.legacy])) * 1.1;
  const x = (v) => L + (v / maxX) * (W - L - R);
  const y = (v) => H - B - (v / maxY) * (H - T - B);
  const line = (key, color) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points
      .map((p) => `${x(p.vms).toFixed(1)},${y(p[key]).toFixed(1)}`)
      .join(' ')}"/>${points
      .map(
        (p) =>
          `<circle cx="${x(p.vms).toFixed(1)}" cy="${y(p[key]).toFixed(1)}" r="3" fill="${color}"/>`,
      )
      .join('')}`;
  const yTicks = Array.from({ length: 6 }, (_, i) => (maxY / 5) * i);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    '<title>Backup time against pool size: xsmeta backup and the legacy method</title>',
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">Backup time against pool size (simulated pool)</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    ...yTicks.map(
      (v) =>
        `<line x1="${L - 4}" y1="${y(v).toFixed(1)}" x2="${W - R}" y2="${y(v).toFixed(1)}" stroke="#ddd"/><text x="${L - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}</text>`,
    ),
    ...points.map(
      (p) =>
        `<text x="${x(p.vms).toFixed(1)}" y="${H - B + 18}" text-anchor="middle">${p.vms}</text>`,
    ),
    `<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">VMs in the pool</text>`,
    `<text x="18" y="${(T + H - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + H - B) / 2})">seconds</text>`,
    line('legacy', '#c0392b'),
    line('ours', '#2471a3'),
    `<rect x="${L + 15}" y="${T + 5}" width="12" height="12" fill="#c0392b"/><text x="${L + 32}" y="${T + 15}">legacy: DB dump + sequential export_metadata, uncompressed</text>`,
    `<rect x="${L + 15}" y="${T + 25}" width="12" height="12" fill="#2471a3"/><text x="${L + 32}" y="${T + 35}">xsmeta backup --create (8 parallel exports, Brotli, ring)</text>`,
    '</svg>',
  ];
  return `${parts.join('\n')}\n`;
}

/** One pool size: a fresh simulator, our backup, then the legacy method, same simulator. */
async function measure(scratch, vms) {
  const dir = join(scratch, `pool-${vms}`);
  const sim = await startSim(join(dir, 'sim'), ['--vms', String(vms)]);
  try {
    const ours = await ourBackup(sim.env, join(dir, 'state'), scratch);
    const result = JSON.parse(ours.out.trim().split('\n').pop());
    const legacyMs = await timeMs(() => legacyBackup(sim.env, join(dir, 'legacy')));
    return { vms, ours, result, legacyMs };
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-backup-'));
  const points = [];
  let main;
  try {
    for (const vms of SIZES) {
      const m = await measure(scratch, vms);
      points.push({ vms, ours: m.ours.ms / 1000, legacy: m.legacyMs / 1000 });
      if (vms === MAIN_VMS) main = m;
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  writeFileSync(join(here, 'backup-scaling.svg'), chart(points));
  const { ours, result, legacyMs } = main;
  const bench = 'backup (issue 6)';
  const ratio = result.storedBytes / result.rawBytes;
  return [
    row({
      bench,
      metric: `backup of ${MAIN_VMS} VMs, wall time (CLI process vs legacy)`,
      ours: ours.ms / 1000,
      baseline: legacyMs / 1000,
      unit: 's',
      goal: '>= 5x faster',
      better: 'lower',
      pass: legacyMs / ours.ms >= 5,
    }),
    row({
      bench,
      metric: 'peak RSS of the backup process',
      ours: ours.rss === null ? null : ours.rss / MiB,
      unit: 'MiB',
      goal: '< 256 MiB',
      better: 'lower',
      pass: ours.rss === null ? null : ours.rss < 256 * MiB,
    }),
    row({
      bench,
      metric: `stored / raw bytes (${(result.rawBytes / MiB).toFixed(0)} MiB raw)`,
      ours: ratio,
      unit: 'ratio',
      goal: '<= 0.15',
      better: 'lower',
      pass: ratio <= 0.15,
    }),
    ...points
      .filter((p) => p.vms !== MAIN_VMS)
      .map((p) =>
        row({
          bench,
          metric: `backup of ${p.vms} VMs (scaling: [chart](backup-scaling.svg))`,
          ours: p.ours,
          baseline: p.legacy,
          unit: 's',
          better: 'lower',
        }),
      ),
  ];
}

await runIfMain(import.meta.url, run);
