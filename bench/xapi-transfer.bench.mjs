// Issue 19: what a per-VM export costs the client with and without a task of its own. Before,
// every GET /export_metadata was wrapped in task.create and task.destroy (three requests per
// VM); xapi makes the handler's task itself when the GET has none (ocaml/xapi/xapi_http.ml,
// with_context), so the client now sends the GET alone. "With task" replays the old sequence
// through the same client (task.create, the export, task.destroy); rounds alternate the two
// on one simulator; wall time and this process's CPU time (process.cpuUsage) are compared.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { startSim } from './backup.bench.mjs';
import { row, runIfMain } from './lib.mjs';

const VMS = Number(process.env.BENCH_TRANSFER_VMS ?? 300);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);

async function pass(client, uuids, withTask) {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (const uuid of uuids) {
    const task = withTask ? await client.call('task.create', 'bench', 'old sequence') : null;
    await client.exportMetadata({ uuid }, { exportSnapshots: false });
    if (task) await client.call('task.destroy', task);
  }
  const c = process.cpuUsage(c0);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: (c.user + c.system) / 1000 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-transfer-'));
  const sim = await startSim(join(scratch, 'sim'), ['--vms', String(VMS)]);
  try {
    const client = await XapiClient.connect({
      url: sim.env.XSMETA_URL,
      username: sim.env.XSMETA_USERNAME,
      password: sim.env.XSMETA_PASSWORD,
    });
    const uuids = [...(await client.getAllRecords('VM')).values()]
      .filter((vm) => !vm.is_control_domain && !vm.is_a_snapshot && !vm.is_a_template)
      .map((vm) => vm.uuid);
    await pass(client, uuids.slice(0, 20), false); // warm-up
    const old = [];
    const now = [];
    for (let i = 0; i < ROUNDS; i++) {
      for (const withTask of i % 2 === 0 ? [true, false] : [false, true])
        (withTask ? old : now).push(await pass(client, uuids, withTask));
    }
    await client.logout();
    const bench = 'xapi transfer (issue 19)';
    const out = [];
    for (const [k, unit] of [
      ['ms', 'ms wall'],
      ['cpuMs', 'ms CPU'],
    ]) {
      const ratios = old.map((o, i) => o[k] / now[i][k]);
      const r = row({
        bench,
        metric: `${uuids.length} sequential exports, ${unit}: with task.create/destroy / without (median of ${ROUNDS}, range ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`,
        ours: median(now.map((x) => x[k])),
        baseline: median(old.map((x) => x[k])),
        unit,
        better: 'lower',
      });
      r.ratio = median(ratios);
      out.push(r);
    }
    return out;
  } finally {
    await sim.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
