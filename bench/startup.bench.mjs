// Issue 19: start-up of `xsmeta --help` and `xsmeta list` over a bare `node -e 0`, and what
// the modules a command loads cost. Each command runs as its own process (timed as below),
// ROUNDS rounds in alternating order; the figures are medians of wall and CPU (user + system).
// `list` is pointed at a closed port (127.0.0.1:9): it loads its modules, is refused at once
// and exits 1, so its time is start-up plus one refused connection.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { row, runIfMain } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const XSMETA = join(root, 'packages/cli/bin/xsmeta.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);

const CASES = {
  'node -e 0': ['-e', '0'],
  'xsmeta --help': [XSMETA, '--help'],
  'xsmeta list (refused connection)': [XSMETA, 'list', '--url', 'http://127.0.0.1:9'],
  "import('classic-level')": ['--input-type=module', '-e', "await import('classic-level')"],
  "import('msgpackr')": ['--input-type=module', '-e', "await import('msgpackr')"],
};
// BENCH_STARTUP_OTHER="label=/path/to/xsmeta.js,…" adds a `list` case per other build of the bin
// (a checkout of the previous commit, or a bundle of it), run in the same paired rounds.
for (const spec of (process.env.BENCH_STARTUP_OTHER ?? '').split(',').filter(Boolean)) {
  const [label, bin] = spec.split('=');
  CASES[`xsmeta list (refused connection), ${label}`] = [
    bin,
    'list',
    '--url',
    'http://127.0.0.1:9',
  ];
}
const CWD = { "import('classic-level')": 'packages/cli', "import('msgpackr')": 'packages/core' };

// The child's CPU (user + system) comes from wait4's rusage in microseconds, read by a small
// Python wrapper that also times the child's wall clock around its own spawn (so the wrapper's
// start-up is not counted); without /usr/bin/python3, /usr/bin/time (10 ms steps) and the wall
// time of the whole spawn.
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : null;
const WRAP = `import resource, subprocess, sys, time
t0 = time.perf_counter_ns()
subprocess.run(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ms = (time.perf_counter_ns() - t0) / 1e6
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], 'w').write(f"{ms} {(r.ru_utime + r.ru_stime) * 1000}")`;

function once(name, scratch) {
  const stats = join(scratch, 'time');
  const opts = {
    cwd: join(root, CWD[name] ?? '.'),
    env: { ...process.env, XSMETA_STATE_DIR: join(scratch, 'state'), XSMETA_PASSWORD: 'x' },
    stdio: 'ignore',
  };
  if (PY) {
    spawnSync(PY, ['-c', WRAP, stats, process.execPath, ...CASES[name]], opts);
    const [ms, cpuMs] = readFileSync(stats, 'utf8').trim().split(' ').map(Number);
    return { ms, cpuMs };
  }
  const t0 = process.hrtime.bigint();
  spawnSync('/usr/bin/time', ['-o', stats, '-f', '%U %S', process.execPath, ...CASES[name]], opts);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const [u, s] = readFileSync(stats, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return { ms, cpuMs: (u + s) * 1000 };
}

/** `min..max` of a list, rounded to whole ms (the spread of the paired rounds). */
const range = (xs) => `${Math.round(Math.min(...xs))}..${Math.round(Math.max(...xs))}`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-startup-'));
  const names = Object.keys(CASES);
  const res = Object.fromEntries(names.map((n) => [n, []]));
  try {
    for (let i = 0; i < ROUNDS; i++)
      for (const n of i % 2 ? [...names].reverse() : names) res[n].push(once(n, scratch));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const base = res['node -e 0'];
  const rows = [];
  for (const n of names.slice(1)) {
    const extraWall = res[n].map((x, i) => x.ms - base[i].ms);
    const extraCpu = res[n].map((x, i) => x.cpuMs - base[i].cpuMs);
    const goal = n === 'xsmeta --help' || n === 'xsmeta list (refused connection)';
    rows.push(
      row({
        bench: 'start-up (issue 19)',
        metric: `${n}: over node -e 0, wall (median of ${ROUNDS} paired rounds; range ${range(extraWall)})`,
        ours: median(extraWall),
        baseline: median(base.map((x) => x.ms)),
        unit: 'ms',
        goal: goal ? '<= +50 ms' : '',
        better: 'lower',
        pass: goal ? median(extraWall) <= 50 : null,
      }),
      row({
        bench: 'start-up (issue 19)',
        metric: `${n}: over node -e 0, CPU user+sys (range ${range(extraCpu)})`,
        ours: median(extraCpu),
        baseline: median(base.map((x) => x.cpuMs)),
        unit: 'ms CPU',
        goal: goal ? '<= +50 ms' : '',
        better: 'lower',
        pass: goal ? median(extraCpu) <= 50 : null,
      }),
    );
  }
  for (const r of rows) r.ratio = null;
  return rows;
}

await runIfMain(import.meta.url, run);
