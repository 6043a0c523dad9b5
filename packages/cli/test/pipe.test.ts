import { spawn } from 'node:child_process';
import { expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { built } from './bins.js';
import { allEvents, capture, pool, withEnv } from './support.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;

/**
 * Runs the built xsmeta with its stdout a pipe whose reader is gone before the command writes
 * a line (as `| head -1` is once it has read its line); returns its exit code and stderr.
 */
function closedStdout(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((r) => child.once('close', (code) => r({ code, stderr })));
}

it.skipIf(!built)(
  'a closed stdout ends the output quietly: list exits without a stack trace; a restore goes on and is recorded (needs dist)',
  async () => {
    const p = await pool({ vms: 6, srs: 1 });
    await withEnv(p.env, async () => {
      for (let i = 0; i < 3; i++) expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      const list = await closedStdout(['list'], p.env);
      expect(list).toEqual({ code: 0, stderr: '' });
      const dry = capture();
      expect(await xsmeta(['restore', '--dry-run', '--force', '--json'], dry)).toBe(0);
      const all = (JSON.parse(dry.stdout[0]!) as { restored: number }).restored;
      expect(all).toBeGreaterThan(1);
      const restore = await closedStdout(['restore', '--force', '--yes'], p.env);
      // stderr holds the announcement of the backup used, and nothing else (no stack trace).
      expect(restore.code).toBe(0);
      expect(restore.stderr).toMatch(/^Using the backup of \S+ \(seq \d+, format \d+\)[^\n]*\n$/);
      const events = (await allEvents(p.env.XSMETA_STATE_DIR!)) as unknown as {
        type: string;
        data: { restored?: number };
      }[];
      // Every VM restored and the run recorded, though no line of it could be printed.
      const finished = events.filter((e) => e.type === 'RestoreFinished').at(-1);
      expect(finished?.data).toMatchObject({ restored: all, errors: 0, dryRun: false });
    });
    await p.close();
  },
  60_000,
);
