// The simulator (issue 5): start time of a 1,000-VM pool in its own process, and export_metadata
// requests per second, one at a time and 16 at a time, over real HTTP with XapiClient.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSim } from './backup.bench.mjs';
import { connectSim, row, runIfMain, timeMs } from './lib.mjs';

const VMS = 1000;
const REQUESTS = 1000;
const CONCURRENCY = 16;

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-sim-'));
  const bench = 'xapi-sim (issue 5)';
  let sim;
  try {
    sim = await startSim(join(scratch, 'sim'), ['--vms', String(VMS)]);
    const client = await connectSim(sim.env, CONCURRENCY);
    let seqMs;
    let parMs;
    let bytes = 0;
    try {
      const vms = [...(await client.getAllRecords('VM')).values()].filter(
        (vm) => !vm.is_control_domain && !vm.is_a_template && !vm.is_a_snapshot,
      );
      const pick = (i) => vms[i % vms.length];
      seqMs = await timeMs(async () => {
        for (let i = 0; i < REQUESTS; i++) bytes += (await client.exportMetadata(pick(i))).length;
      });
      let next = 0;
      parMs = await timeMs(() =>
        Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next < REQUESTS) {
              const i = next++;
              bytes += (await client.exportMetadata(pick(i))).length;
            }
          }),
        ),
      );
    } finally {
      await client.logout();
    }
    const avgKiB = bytes / (2 * REQUESTS) / 1024;
    return [
      row({
        bench,
        metric: `start of a ${VMS}-VM pool (process spawn to listening)`,
        ours: sim.startMs / 1000,
        unit: 's',
        goal: '< 5 s',
        better: 'lower',
        pass: sim.startMs < 5000,
      }),
      row({
        bench,
        metric: `export_metadata, sequential (${REQUESTS} requests, ${avgKiB.toFixed(0)} KiB each)`,
        ours: REQUESTS / (seqMs / 1000),
        unit: 'req/s',
      }),
      row({
        bench,
        metric: `export_metadata, ${CONCURRENCY} concurrent (${REQUESTS} requests)`,
        ours: REQUESTS / (parMs / 1000),
        baseline: REQUESTS / (seqMs / 1000),
        unit: 'req/s',
      }),
    ];
  } finally {
    await sim?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
