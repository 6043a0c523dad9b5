import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { built } from './bins.js';
import { pool } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'xsmeta-young-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// After the bin has run, a burst of short-lived objects with many survivors (what a large
// restore's imports make) is allocated, and the largest new space seen is printed. Without a
// limit, V8 doubles the new space up to 2 × 16 MiB under this load.
const probe = `import v8 from 'node:v8';
process.on('exit', () => {
  const ns = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
  let keep = [];
  let max = 0;
  for (let i = 0; i < 2e6; i++) {
    keep.push({ a: i, b: 'x' + i });
    if (keep.length > 20000) keep = [];
    if (i % 10000 === 0) max = Math.max(max, ns());
  }
  process.stderr.write('NEW_SPACE ' + max + '\\n');
});
`;

it.skipIf(!built)("each bin keeps V8's young generation from growing", () => {
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, probe);
  for (const name of ['xsmeta', 'xe-backup-metadata', 'xe-restore-metadata']) {
    const bin = new URL(`../bin/${name}.js`, import.meta.url).pathname;
    const r = spawnSync(process.execPath, ['--import', file, bin, '--version'], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    const max = Number(/NEW_SPACE (\d+)/.exec(r.stderr)?.[1]);
    expect(max).toBeGreaterThan(0);
    expect(max, name).toBeLessThanOrEqual(4 * 1024 * 1024);
  }
});

// A backup command of a pool within the one-request export's limit ends its process with the
// young generation free to grow (its memory is bounded by that limit; collections cost less).
it.skipIf(!built)('a backup command of a small pool lets the young generation grow', async () => {
  const file = join(dir, 'probe.mjs');
  writeFileSync(file, probe);
  const p = await pool({ vms: 4 });
  try {
    const path = new URL('../bin/xsmeta.js', import.meta.url).pathname;
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', file, path, 'backup', '--create', '--json'],
        {
          env: { ...process.env, ...p.env },
          stdio: ['ignore', 'ignore', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      child.once('close', (code) => resolve({ code, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    const max = Number(/NEW_SPACE (\d+)/.exec(r.stderr)?.[1]);
    expect(max).toBeGreaterThan(4 * 1024 * 1024);
  } finally {
    await p.close();
  }
});
