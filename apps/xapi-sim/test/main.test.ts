import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const BIN = new URL('../bin/xapi-sim.js', import.meta.url).pathname;
const built = existsSync(new URL('../dist/main.js', import.meta.url));

it.skipIf(!built)(
  '--state naming a file is one clear line and exit 2, not a stack trace (needs dist)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'xapi-sim-main-'));
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const r = spawnSync(process.execPath, [BIN, '--state', file, '--port', '0'], {
      encoding: 'utf8',
    });
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      `xapi-sim: --state ${file} is not a folder: name a folder (created when missing)\n`,
    );
  },
);

/** Starts the simulator, waits for its listening line, stops it; returns its stderr. */
function runOnce(args: string[]): Promise<string> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('XAPI simulator listening on')) child.kill('SIGTERM');
    });
    child.once('exit', (code, signal) =>
      code === 0 ? resolve(err) : reject(new Error(`exit ${code} ${signal}: ${err}`)),
    );
  });
}

it.skipIf(!built)(
  '--fresh-pool with --vms says that it ignores --vms (needs dist)',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xapi-sim-main-'));
    try {
      expect(await runOnce(['--state', dir, '--port', '0', '--vms', '2'])).toBe('');
      expect(await runOnce(['--state', dir, '--port', '0', '--fresh-pool', '--vms', '5'])).toBe(
        'xapi-sim: --fresh-pool keeps the SRs in the state folder and starts a pool with no VMs: --vms and --srs are ignored\n',
      );
      expect(await runOnce(['--state', dir, '--port', '0', '--fresh-pool'])).toBe('');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  60_000,
);
