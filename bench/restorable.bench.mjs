// Every backup that is written can be restored (issue 19): a backup of a 5,000-VM simulated
// pool, then `xsmeta verify`, then `xsmeta restore --mode all` on a fresh pool (the same
// storage re-attached), dry run and real. Each step must exit 0 and the restore must report
// every VM restored with no error; the rows record the time and peak RSS of each step.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ourBackup, runNode, startSim } from './backup.bench.mjs';
import { row, runIfMain } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const XSMETA = join(here, '..', 'packages/cli/bin/xsmeta.js');
const VMS = Number(process.env.BENCH_RESTORABLE_VMS ?? 5000);
const MiB = 1024 * 1024;

function xsmeta(env, stateDir, scratch, args) {
  return runNode(XSMETA, args, { ...env, XSMETA_STATE_DIR: stateDir }, scratch);
}

/** Runs one step; returns its outcome instead of throwing, so a refusal becomes a row. */
async function step(fn) {
  try {
    return { ok: true, ...(await fn()) };
  } catch (e) {
    return {
      ok: false,
      error: String(e?.message ?? e)
        .split('\n')
        .slice(0, 3)
        .join(' '),
    };
  }
}

function summary(out) {
  const m = /Restored (\d+) VM\(s\), and (\d+) error\(s\)/.exec(out);
  return m ? { restored: Number(m[1]), errors: Number(m[2]) } : null;
}

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-restorable-'));
  const simDir = join(scratch, 'sim');
  const stateDir = join(scratch, 'state');
  const bench = `restorable (issue 19), ${VMS} VMs`;
  const rows = [];
  let sim;
  try {
    sim = await startSim(simDir, ['--vms', String(VMS)]);
    const backup = await step(() => ourBackup(sim.env, stateDir, scratch));
    if (!backup.ok) throw new Error(`backup failed: ${backup.error}`);
    const result = JSON.parse(backup.out.trim().split('\n').pop());
    const verify = await step(() =>
      xsmeta(sim.env, stateDir, scratch, ['verify', '--sr', result.srUuid]),
    );
    await sim.stop();
    // New hardware, the same storage re-attached.
    sim = await startSim(simDir, ['--fresh-pool']);
    const args = ['restore', '--sr', result.srUuid, '--mode', 'all', '--yes'];
    const dry = await step(() => xsmeta(sim.env, stateDir, scratch, [...args, '--dry-run']));
    const real = await step(() => xsmeta(sim.env, stateDir, scratch, args));
    const line = (name, r, extra = '') => {
      const s = r.ok ? summary(r.out) : null;
      const good = r.ok && (s === null || (s.errors === 0 && s.restored >= VMS));
      rows.push(
        row({
          bench,
          metric: `${name}${s ? ` (${s.restored} restored, ${s.errors} errors)` : ''}${r.ok ? '' : `: FAILED ${r.error}`}${extra}`,
          ours: r.ok ? r.ms / 1000 : null,
          unit: 's',
          goal: 'exit 0, every VM',
          pass: good,
        }),
      );
      if (r.ok && r.rss !== null) {
        rows.push(
          row({
            bench,
            metric: `${name}: peak RSS`,
            ours: r.rss / MiB,
            unit: 'MiB',
            goal: '< 200 MiB',
            better: 'lower',
            pass: r.rss < 200 * MiB,
          }),
        );
      }
    };
    line('backup', backup, `, ${(result.rawBytes / MiB).toFixed(0)} MiB raw`);
    line('verify', verify);
    line('restore --mode all --dry-run', dry);
    line('restore --mode all', real);
    return rows;
  } finally {
    await sim?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
