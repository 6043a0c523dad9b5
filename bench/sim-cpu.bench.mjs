// The simulator's CPU time per backup request (issue 19): the simulator is one Node process,
// and its CPU for our requests is a floor under the backup's wall time. Measured as the
// utime+stime of its pid (/proc/<pid>/stat) over one `xsmeta backup --create --json` of a
// 1,000-VM pool, and over each heavy handler alone (`GET /export_metadata?all=true`,
// `GET /pool/xmldbdump`). CPU time, not wall: the machine is shared.
//
// BENCH_SIM_BEFORE=<path of another build's apps/xapi-sim/bin/xapi-sim.js> compares that
// build (the baseline) with this one, alternated round by round (each side on a simulator
// started afresh), medians over BENCH_ROUNDS rounds (default 5) with their ranges.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ourBackup, startSim } from './backup.bench.mjs';
import { connectSim, row, runIfMain } from './lib.mjs';

const VMS = 1000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const HANDLER_RUNS = 3;
const BEFORE = process.env.BENCH_SIM_BEFORE;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function procCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // after "pid (comm) " the fields count from 3 (state): utime is field 14, stime 15
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/**
 * Waits until the simulator is idle: no CPU over 750 ms, longer than its 500 ms pool.json
 * save delay, so that a save a previous request scheduled is not counted in the next one.
 */
async function settle(pid) {
  const until = Date.now() + 15_000;
  let last = procCpuMs(pid);
  let still = 0;
  while (Date.now() < until && still < 3) {
    await new Promise((r) => setTimeout(r, 250));
    const now = procCpuMs(pid);
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

/** The simulator's CPU (ms) while `fn` runs. */
async function simCpu(pid, fn) {
  await settle(pid);
  const before = procCpuMs(pid);
  await fn();
  return procCpuMs(pid) - before;
}

async function get(url) {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.arrayBuffer()).byteLength;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** One side of one round: a fresh simulator, the backup, then each handler alone. */
async function side(bin, scratch, name) {
  const dir = mkdtempSync(join(scratch, `${name}-`));
  const sim = await startSim(join(dir, 'sim'), ['--vms', String(VMS)], bin);
  try {
    const backup = await simCpu(sim.pid, () => ourBackup(sim.env, join(dir, 'state'), dir));
    const client = await connectSim(sim.env, 1);
    try {
      const base = sim.env.XSMETA_URL.replace(/\/$/, '');
      const q = `session_id=${encodeURIComponent(client.sessionRef)}`;
      const handler = async (path) => {
        const runs = [];
        for (let i = 0; i < HANDLER_RUNS; i++)
          runs.push(await simCpu(sim.pid, () => get(`${base}${path}${q}`)));
        return median(runs);
      };
      return {
        backup,
        exportAll: await handler('/export_metadata?all=true&'),
        dump: await handler('/pool/xmldbdump?'),
      };
    } finally {
      await client.logout();
    }
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const span = (a) => `${Math.min(...a).toFixed(0)}-${Math.max(...a).toFixed(0)}`;

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-sim-cpu-'));
  const bench = 'simulator CPU (issue 19)';
  const ours = { backup: [], exportAll: [], dump: [] };
  const before = { backup: [], exportAll: [], dump: [] };
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // alternate which side goes first, so that a drift in the machine's load hits both
      const order = r % 2 === 0 ? ['before', 'ours'] : ['ours', 'before'];
      for (const s of order) {
        if (s === 'before' && !BEFORE) continue;
        const m = await side(s === 'before' ? BEFORE : undefined, scratch, s);
        const into = s === 'before' ? before : ours;
        for (const k of Object.keys(m)) into[k].push(m[k]);
        process.stderr.write(
          `sim-cpu: round ${r + 1} ${s}: backup ${m.backup.toFixed(0)} ms, export all=true ${m.exportAll.toFixed(0)} ms, xmldbdump ${m.dump.toFixed(0)} ms\n`,
        );
      }
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const metrics = [
    ['backup', `one ${VMS}-VM \`xsmeta backup --create --json\``],
    ['exportAll', `GET /export_metadata?all=true, ${VMS} VMs`],
    ['dump', `GET /pool/xmldbdump, ${VMS} VMs`],
  ];
  return metrics.map(([k, label]) =>
    row({
      bench,
      metric: `simulator CPU for ${label} (median of ${ROUNDS}, ours ${span(ours[k])}${BEFORE ? `, before ${span(before[k])}` : ''})`,
      ours: median(ours[k]),
      baseline: BEFORE ? median(before[k]) : null,
      unit: 'ms CPU',
      better: 'lower',
    }),
  );
}

await runIfMain(import.meta.url, run);
