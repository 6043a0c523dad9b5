/**
 * "The SR named, else the pool's default SR, else an error" is one decision (core's
 * resolveSr): on a pool with no default SR every command that needs an SR and was given none
 * fails the same way, NO_DEFAULT_SR pointing to -u / --sr, before it touches a disk.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSimulator } from '@xsmeta/xapi-sim';
import { expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

const MESSAGE = 'the pool has no default SR: name one with -u SR_UUID (xsmeta: --sr)';

it('with no default SR, every command given no SR fails with NO_DEFAULT_SR and the same line', async () => {
  const p = await pool({ vms: 2, srs: 1 });
  try {
    // A pool whose default SR was forgotten: xapi leaves pool.default_SR as OpaqueRef:NULL
    // (ocaml/xapi/xapi_sr.ml clears it when the SR goes). The pool is restarted on that state.
    await p.sim.close();
    const state = join(p.sim.stateDir, 'pool.json');
    const saved = JSON.parse(readFileSync(state, 'utf8')) as {
      db: Record<string, Record<string, Record<string, unknown>>>;
    };
    for (const rec of Object.values(saved.db.pool!)) rec.default_SR = 'OpaqueRef:NULL';
    writeFileSync(state, JSON.stringify(saved));
    const sim = await startSimulator({ stateDir: p.sim.stateDir, vms: 2, srs: 1, seed: 3 });
    try {
      const env = { ...p.env, ...sim.env };
      const runs: [
        string,
        (a: string[], io: ReturnType<typeof capture>) => Promise<number>,
        string[],
      ][] = [
        ['xsmeta backup', xsmeta, ['backup']],
        ['xsmeta list', xsmeta, ['list']],
        ['xsmeta restore --dry-run', xsmeta, ['restore', '--dry-run']],
        ['xsmeta legacy list', xsmeta, ['legacy', 'list']],
        ['xe-backup-metadata -c', xeBackup, ['-c']],
        ['xe-restore-metadata -l', xeRestore, ['-l']],
        ['xe-restore-metadata -o -l', xeRestore, ['-o', '-l']],
        ['xe-restore-metadata -x', xeRestore, ['-x', '0f0e0d0c-0b0a-4000-8000-000000000001', '-n']],
      ];
      for (const [name, main, args] of runs) {
        const io = capture();
        const code = await withEnv(env, () => main(args, io));
        expect(code, name).toBe(1);
        const text = io.stderr.join('\n');
        expect(text, name).toContain('NO_DEFAULT_SR');
        expect(text, name).toContain(MESSAGE);
      }
    } finally {
      await sim.close();
    }
  } finally {
    await p.close();
  }
});
