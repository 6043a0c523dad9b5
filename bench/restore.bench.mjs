// Restore of 1,000 VMs onto a fresh pool (issue 7): `xe-restore-metadata` (bounded parallel
// imports) as a child process, dry run and real, against one sequential import_metadata per VM
// with XapiClient (dry run) on the same simulator, in the same run.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XapiClient } from '@xsmeta/xapi';
import { legacyBackup, ourBackup, runNode, startSim } from './backup.bench.mjs';
import { row, runIfMain, timeMs } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const RESTORE = join(here, '..', 'packages/cli/bin/xe-restore-metadata.js');
const VMS = 1000;

/** Runs xe-restore-metadata; returns the VMs restored (from its summary line) and the time. */
async function ourRestore(env, stateDir, scratch, args) {
  const r = await runNode(RESTORE, args, { ...env, XSMETA_STATE_DIR: stateDir }, scratch);
  const m = /Restored (\d+) VM\(s\), and (\d+) error\(s\)/.exec(r.out);
  if (!m) throw new Error(`no summary line from xe-restore-metadata: ${r.out.slice(-500)}`);
  return { ms: r.ms, restored: Number(m[1]), errors: Number(m[2]) };
}

/** The baseline: one import_metadata dry run per exported VM file, one after the other. */
async function sequentialDryRun(env, files) {
  const client = await XapiClient.connect({
    url: env.XSMETA_URL,
    username: env.XSMETA_USERNAME,
    password: env.XSMETA_PASSWORD,
  });
  let ok = 0;
  let errors = 0;
  try {
    for (const f of files) {
      try {
        await client.importMetadata(await readFile(f), { dryRun: true });
        ok++;
      } catch {
        errors++;
      }
    }
  } finally {
    await client.logout();
  }
  return { ok, errors };
}

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-restore-'));
  const simDir = join(scratch, 'sim');
  const stateDir = join(scratch, 'state');
  const legacyDir = join(scratch, 'legacy');
  let sim;
  try {
    // Setup: a 1,000-VM pool, our backup and the legacy per-VM exports of it.
    sim = await startSim(simDir, ['--vms', String(VMS)]);
    const backup = JSON.parse((await ourBackup(sim.env, stateDir, scratch)).out.trim());
    await legacyBackup(sim.env, legacyDir);
    await sim.stop();
    // New hardware, the same storage re-attached.
    sim = await startSim(simDir, ['--fresh-pool']);
    const args = ['-u', backup.srUuid, '-y'];
    const dry = await ourRestore(sim.env, stateDir, scratch, [...args, '-n']);
    const files = readdirSync(legacyDir)
      .filter((f) => f.endsWith('.vmmeta'))
      .map((f) => join(legacyDir, f));
    let base;
    const baseMs = await timeMs(async () => {
      base = await sequentialDryRun(sim.env, files);
    });
    const real = await ourRestore(sim.env, stateDir, scratch, args);
    const bench = 'restore (issue 7)';
    const oursDry = dry.restored / (dry.ms / 1000);
    const baseDry = base.ok / (baseMs / 1000);
    const oursReal = real.restored / (real.ms / 1000);
    return [
      row({
        bench,
        metric: `dry-run restore of ${dry.restored} VMs (${dry.errors} errors; sequential: ${base.ok} ok, ${base.errors} errors)`,
        ours: oursDry,
        baseline: baseDry,
        unit: 'VMs/s',
        goal: '>= 4x',
        pass: oursDry / baseDry >= 4 && dry.errors === 0,
      }),
      row({
        bench,
        metric: `real restore of ${real.restored} VMs (${real.errors} errors) vs sequential dry run`,
        ours: oursReal,
        baseline: baseDry,
        unit: 'VMs/s',
        goal: '>= 4x',
        pass: oursReal / baseDry >= 4 && real.errors === 0,
      }),
    ];
  } finally {
    await sim?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
