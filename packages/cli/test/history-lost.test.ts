import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

it('a backup committed to the ring while its history cannot be written succeeds, with a warning that says so', async () => {
  const p = await pool({ vms: 3, srs: 1 });
  await withEnv(p.env, async () => {
    // The event store cannot be opened (a file where its folder should be: as unwritable as
    // a full disk, whoever runs the test).
    await mkdir(p.env.XSMETA_STATE_DIR!, { recursive: true });
    writeFileSync(join(p.env.XSMETA_STATE_DIR!, 'events'), '');
    const io = capture();
    expect(await xsmeta(['backup', '--create', '--json'], io), io.stderr.join('\n')).toBe(0);
    expect(JSON.parse(io.stdout[0]!)).toMatchObject({ seq: 1 });
    expect(io.stderr).toEqual([
      expect.stringMatching(
        /^warning: the history of this backup could not be written \(.+\): 'xsmeta history' will not show it; the backup itself is reported as it happened$/,
      ),
    ]);
    // What was reported is what is on disk.
    const list = capture();
    expect(await xsmeta(['list', '--json'], list)).toBe(0);
    expect((JSON.parse(list.stdout[0]!) as { seq: number }[]).map((r) => r.seq)).toEqual([1]);
    // A restore likewise reports what it did.
    const r = capture();
    expect(await xsmeta(['restore', '--dry-run', '--force', '--json'], r)).toBe(0);
    expect(JSON.parse(r.stdout[0]!)).toMatchObject({ errors: 0 });
    expect(r.stderr.some((l) => l.startsWith('warning: the history of this restore'))).toBe(true);
  });
  await p.close();
});
