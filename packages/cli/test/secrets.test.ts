import { statSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, vi } from 'vitest';
import { resolveSettings } from '../src/config.js';
import { pool } from './support.js';

it('a password file group or others may read is used with a warning that says how to fix it; a 0600 one silently', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-secret-'));
  const file = join(dir, 'password');
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    writeFileSync(file, 'hunter2\n', { mode: 0o644 });
    expect(resolveSettings({ passwordFile: file, stateDir: dir }, {}).password).toBe('hunter2');
    expect(err.mock.calls.map((c) => String(c[0]))).toEqual([
      `warning: the password file ${file} may be read by group or others (mode 0644): run chmod 600 ${file}\n`,
    ]);
    err.mockClear();
    writeFileSync(join(dir, 'private'), 'hunter2\n', { mode: 0o600 });
    expect(
      resolveSettings({ passwordFile: join(dir, 'private'), stateDir: dir }, {}).password,
    ).toBe('hunter2');
    expect(err).not.toHaveBeenCalled();
  } finally {
    err.mockRestore();
    await rm(dir, { recursive: true, force: true });
  }
});

it("the simulator's env file, which holds its password, is its owner's only", async () => {
  const p = await pool({ vms: 1, srs: 1 });
  expect(statSync(join(p.sim.stateDir, 'env')).mode & 0o777).toBe(0o600);
  await p.close();
});
