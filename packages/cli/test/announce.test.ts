import { readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

function ringImage(dir: string): string {
  return readdirSync(join(dir, 'sim', 'sr'), { recursive: true })
    .map((f) => join(dir, 'sim', 'sr', String(f)))
    .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
}

it('a restore says which backup it uses before it starts, and when the newest does not verify, that an older one is taken', async () => {
  const p = await pool({ vms: 3 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    expect(await xsmeta(['backup'], capture())).toBe(0);
    const list = capture();
    await xsmeta(['list', '--json'], list);
    const rows = JSON.parse(list.stdout[0]!) as {
      seq: number;
      date: string;
      srUuid: string;
      storedBytes: number;
    }[];
    const [r2, r1] = [rows.find((r) => r.seq === 2)!, rows.find((r) => r.seq === 1)!];
    const dry = capture();
    expect(await xeRestore(['-n', '-f'], dry)).toBe(0);
    expect(dry.stderr[0]).toMatch(
      new RegExp(`^Using the backup of ${r2.date} \\(seq 2, format 1\\) on SR ${r2.srUuid}, VDI `),
    );
    // Damage the newest record's payload: the restore takes seq 1 and says so.
    const offset = 256 * 1024 + Math.ceil((64 + r1.storedBytes) / 4096) * 4096 + 64 + 10;
    const fh = await open(ringImage(p.dir), 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0]! ^= 1;
    await fh.write(b, 0, 1, offset);
    await fh.close();
    const older = capture();
    expect(await xsmeta(['restore', '--dry-run', '--force'], older)).toBe(0);
    expect(older.stderr.slice(0, 2)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^Skipping backup ${r2.date} \\(seq 2\\), which cannot be restored: RING_CORRUPT`,
        ),
      ),
      expect.stringMatching(new RegExp(`^Using the backup of ${r1.date} \\(seq 1, format 1\\)`)),
    ]);
  });
  await p.close();
}, 60_000);
