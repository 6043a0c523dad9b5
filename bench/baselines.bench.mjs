// Issue 19: xsmeta against the simplest clients, at each pool size, several rounds. Each side
// gets a simulator started afresh (a new state directory), the order of the sides alternates
// from round to round, and every ratio is the median of the per-round ratios, with its range.
//   ours    `xsmeta backup --create --json`, then on a fresh pool (the same storage
//           re-attached) `xsmeta restore --mode all --yes`
//   seq     bench/baseline-client.mjs: one keep-alive connection, the DB dump, then one GET
//           /export_metadata per VM; on the fresh pool one PUT /import_metadata per VM
//   legacy  bench/legacy-loop.sh: one process (curl) per VM export, as the old dom0 script
//           ran one `xe vm-export` per VM (backup only)
// Every client runs as its own process under /usr/bin/time: wall time, CPU time (user +
// system, children included) and peak RSS are the client's. The simulator's own CPU time over
// each client run (utime + stime of its process, /proc/<pid>/stat) is recorded beside them: the
// simulator is one Node process, so its CPU time for our side is a floor under our wall time.
// BENCH_SIZES (default 100,1000) and BENCH_ROUNDS (default 3) change the work; BENCH_RESTORE=0
// runs the backup side only (its rows alone); BENCH_RESTORE_PROF=DIR writes a CPU profile of
// each of our restores there; BENCH_BEFORE=<an older build's packages/cli/bin/xsmeta.js> adds
// that build as a fourth side, run as ours is (a change measured before/after in one run).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSim } from './backup.bench.mjs';
import { row, runIfMain } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const XSMETA = join(here, '..', 'packages/cli/bin/xsmeta.js');
const SIZES = (process.env.BENCH_SIZES ?? '100,1000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RESTORE = process.env.BENCH_RESTORE !== '0';
const BEFORE = process.env.BENCH_BEFORE;
const MiB = 1024 * 1024;

/** Runs a command under /usr/bin/time; resolves with stdout, wall ms, CPU ms and peak RSS. */
function timed(cmd, args, env, scratch) {
  const stats = join(scratch, `time-${process.pid}-${Date.now()}`);
  const child = spawn('/usr/bin/time', ['-o', stats, '-f', '%U %S %M', cmd, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const t0 = process.hrtime.bigint();
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) =>
    child.once('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`));
        return;
      }
      const [u, s, kb] = readFileSync(stats, 'utf8').trim().split('\n').pop().split(' ');
      rmSync(stats, { force: true });
      resolve({ out, ms, cpuMs: (Number(u) + Number(s)) * 1000, rss: Number(kb) * 1024 });
    }),
  );
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system, ms) process `pid` has used so far, from /proc/<pid>/stat. */
function procCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // after "pid (comm) " the fields count from 3 (state): utime is field 14, stime 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** `timed`, plus the simulator's CPU time over the run (`simCpuMs`). */
async function timedOn(sim, cmd, args, env, scratch) {
  const before = procCpuMs(sim.pid);
  const r = await timed(cmd, args, env, scratch);
  r.simCpuMs = procCpuMs(sim.pid) - before;
  return r;
}

const restored = (out) => {
  const m = /Restored (\d+) VM\(s\), and (\d+) error\(s\)/.exec(out);
  if (!m) throw new Error(`no summary line from xsmeta restore: ${out.slice(-500)}`);
  return { restored: Number(m[1]), errors: Number(m[2]) };
};

/** One side of one round: a fresh simulator of `vms` VMs, the backup, then the restore. */
async function side(name, vms, scratch) {
  const dir = mkdtempSync(join(scratch, `${name}-`));
  const simDir = join(dir, 'sim');
  let sim = await startSim(simDir, ['--vms', String(vms)]);
  const r = { name };
  try {
    if (name === 'ours' || name === 'before') {
      const bin = name === 'before' ? BEFORE : XSMETA;
      const env = { ...sim.env, XSMETA_STATE_DIR: join(dir, 'state') };
      r.backup = await timedOn(
        sim,
        process.execPath,
        [bin, 'backup', '--create', '--json'],
        env,
        dir,
      );
      if (!RESTORE) return r;
      const { srUuid } = JSON.parse(r.backup.out.trim().split('\n').pop());
      await sim.stop();
      sim = await startSim(simDir, ['--fresh-pool']);
      const env2 = { ...sim.env, XSMETA_STATE_DIR: join(dir, 'state') };
      // BENCH_RESTORE_PROF=DIR: a CPU profile of each of our restores in DIR (node --cpu-prof).
      const prof = process.env.BENCH_RESTORE_PROF
        ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_RESTORE_PROF]
        : [];
      r.restore = await timedOn(
        sim,
        process.execPath,
        [...prof, bin, 'restore', '--sr', srUuid, '--mode', 'all', '--yes'],
        env2,
        dir,
      );
      r.restore.result = restored(r.restore.out);
      if (r.restore.result.errors !== 0) throw new Error(`ours: restore errors: ${r.restore.out}`);
    } else if (name === 'seq') {
      const files = join(dir, 'files');
      const client = join(here, 'baseline-client.mjs');
      r.backup = await timedOn(sim, process.execPath, [client, 'backup', files], sim.env, dir);
      if (!RESTORE) return r;
      await sim.stop();
      sim = await startSim(simDir, ['--fresh-pool']);
      r.restore = await timedOn(sim, process.execPath, [client, 'restore', files], sim.env, dir);
      const res = JSON.parse(r.restore.out.trim());
      r.restore.result = { restored: res.ok, errors: res.vms - res.ok };
    } else {
      r.backup = await timedOn(
        sim,
        'sh',
        [join(here, 'legacy-loop.sh'), join(dir, 'files')],
        sim.env,
        dir,
      );
    }
    return r;
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f2 = (x) => x.toFixed(2);
const range = (xs) => `${f2(Math.min(...xs))}-${f2(Math.max(...xs))}`;

/** Runs every round of one size; returns the per-round results by side. */
export async function rounds(vms, n = ROUNDS) {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-baselines-'));
  const out = [];
  try {
    for (let i = 0; i < n; i++) {
      const sides = ['ours', ...(BEFORE ? ['before'] : []), 'seq', 'legacy'];
      const order = i % 2 === 0 ? sides : sides.slice().reverse();
      const round = { load: [loadavg()[0]] };
      for (const name of order) {
        process.stderr.write(`baselines: ${vms} VMs, round ${i + 1}/${n}, ${name}\n`);
        round[name] = await side(name, vms, scratch);
        round.load.push(loadavg()[0]);
      }
      out.push(round);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return out;
}

/** A ratio row: the median of the per-round ratios, its range, and the sides' medians. */
function ratioRow({ bench, metric, ours, base, ratios, unit, goal, better, target }) {
  const r = row({
    bench,
    metric: `${metric} (median of ${ratios.length}, range ${range(ratios)})`,
    ours: median(ours),
    baseline: median(base),
    unit,
    goal,
    better,
  });
  r.ratio = median(ratios);
  r.pass = target(r.ratio);
  return r;
}

export async function run() {
  const rows = [];
  for (const vms of SIZES) {
    const rs = await rounds(vms);
    // The 1-minute load average seen between the sides (the machine may be shared).
    const loads = rs.flatMap((r) => r.load);
    const bench = `baselines (issue 19), ${vms} VMs, load ${Math.min(...loads).toFixed(0)}-${Math.max(...loads).toFixed(0)}`;
    const b = (s, k) => rs.map((r) => r[s].backup[k]);
    const re = (s, k) => rs.map((r) => r[s].restore[k]);
    const main = vms === 1000;
    // One measure (`key`, in ms) of a phase, in seconds: ours and side `other` per round, and
    // the per-round ratio other/ours (ours/other when `oursOver`).
    const pair = (phase, key, other, oursOver = false) => ({
      ours: rs.map((r) => r.ours[phase][key] / 1000),
      base: rs.map((r) => r[other][phase][key] / 1000),
      ratios: rs.map((r) =>
        oursOver
          ? r.ours[phase][key] / r[other][phase][key]
          : r[other][phase][key] / r.ours[phase][key],
      ),
    });
    // A wall-time goal, set at the main size only.
    const atLeast = (n) => ({
      goal: main ? `>= ${n}` : '',
      target: (x) => (main ? x >= n : null),
    });
    const noGoal = { goal: '', target: () => null };
    rows.push(
      ratioRow({
        bench,
        metric: 'backup wall: sequential keep-alive client / ours',
        ...pair('backup', 'ms', 'seq'),
        unit: 's',
        better: 'lower',
        ...atLeast(1.5),
      }),
      ratioRow({
        bench,
        metric: 'backup wall: process-per-VM legacy loop / ours',
        ...pair('backup', 'ms', 'legacy'),
        unit: 's',
        better: 'lower',
        ...atLeast(8),
      }),
      ratioRow({
        bench,
        metric: 'backup client CPU (user+sys): ours / sequential client',
        ...pair('backup', 'cpuMs', 'seq', true),
        unit: 's CPU',
        goal: '<= 1.0 (ours/seq)',
        better: 'higher',
        target: (x) => x <= 1.0,
      }),
    );
    rows.push(
      ratioRow({
        bench,
        metric:
          'backup bound: legacy loop wall / simulator CPU of ours (highest reachable wall ratio)',
        ours: pair('backup', 'simCpuMs', 'legacy').ours,
        base: pair('backup', 'ms', 'legacy').base,
        ratios: rs.map((r) => r.legacy.backup.ms / r.ours.backup.simCpuMs),
        unit: 's',
        better: 'lower',
        ...noGoal,
      }),
    );
    if (BEFORE)
      for (const what of ['backup', ...(RESTORE ? ['restore'] : [])])
        rows.push(
          ratioRow({
            bench,
            metric: `${what} wall: the build before (BENCH_BEFORE) / ours`,
            ...pair(what, 'ms', 'before'),
            unit: 's',
            better: 'lower',
            ...noGoal,
          }),
          ratioRow({
            bench,
            metric: `${what} client CPU: ours / the build before`,
            ...pair(what, 'cpuMs', 'before', true),
            unit: 's CPU',
            better: 'higher',
            ...noGoal,
          }),
        );
    if (RESTORE)
      rows.push(
        ratioRow({
          bench,
          metric: `restore --mode all wall (${median(re('ours', 'result').map((x) => x.restored))} VMs, real imports, fresh pool): sequential client / ours`,
          ...pair('restore', 'ms', 'seq'),
          unit: 's',
          better: 'lower',
          ...atLeast(1.5),
        }),
        ratioRow({
          bench,
          metric: 'restore client CPU (user+sys): ours / sequential client',
          ...pair('restore', 'cpuMs', 'seq', true),
          unit: 's CPU',
          better: 'higher',
          ...noGoal,
        }),
      );
    // The simulator's CPU time over each run, and the bound it sets: the simulator is one Node
    // process, so our wall time cannot fall below its CPU time for our requests, and no client
    // making those requests can beat the sequential client by more than seq wall / that.
    for (const what of ['backup', ...(RESTORE ? ['restore'] : [])]) {
      const sim = pair(what, 'simCpuMs', 'seq', true);
      rows.push(
        ratioRow({
          bench,
          metric: `${what} simulator CPU (user+sys of xapi-sim during the run): ours / sequential client`,
          ...sim,
          unit: 's CPU',
          better: 'higher',
          ...noGoal,
        }),
        ratioRow({
          bench,
          metric: `${what} bound: sequential client wall / simulator CPU of ours (highest reachable wall ratio)`,
          ours: sim.ours,
          base: pair(what, 'ms', 'seq').base,
          ratios: rs.map((r) => r.seq[what].ms / r.ours[what].simCpuMs),
          unit: 's',
          better: 'lower',
          ...noGoal,
        }),
      );
    }
    for (const [what, xs] of [
      ['backup', b('ours', 'rss')],
      ...(RESTORE ? [['restore', re('ours', 'rss')]] : []),
    ]) {
      const peak = Math.max(...xs) / MiB;
      rows.push(
        row({
          bench,
          metric: `peak RSS of our ${what} (highest of ${xs.length})`,
          ours: peak,
          unit: 'MiB',
          goal: '< 200 MiB',
          better: 'lower',
          pass: peak < 200,
        }),
      );
    }
  }
  return rows;
}

await runIfMain(import.meta.url, run);
