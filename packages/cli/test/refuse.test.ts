import { readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { openFileDevice, Ring, writeArchive } from '@xsmeta/vdi-store';
import { XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

async function vmCount(url: string) {
  const x = await XapiClient.connect({ url, username: 'root', password: 'xsmeta' });
  const n = (await x.getAllRecords('VM')).size;
  await x.logout();
  return n;
}

function ringImage(dir: string): string {
  return readdirSync(join(dir, 'sim', 'sr'), { recursive: true })
    .map((f) => join(dir, 'sim', 'sr', String(f)))
    .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
}

it('refuses a backup of a newer format, naming both versions, and one with a flipped byte, before any change', async () => {
  const p = await pool({ vms: 4 });
  await withEnv(p.env, async () => {
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    expect(await xsmeta(['backup'], capture())).toBe(0);
    const img = ringImage(p.dir);
    // A record written by a future xsmeta (format version 99), appended with the ring API.
    {
      const ring = await Ring.open(await openFileDevice(img));
      const manifest = await writeArchive([
        {
          name: 'manifest.json',
          data: new TextEncoder().encode(JSON.stringify({ formatVersion: 99, parts: [] })),
        },
      ]);
      const parts = await writeArchive([
        { name: 'vm-map.json', data: new TextEncoder().encode('[]') },
      ]);
      const data = new Uint8Array(8 + parts.bytes.length + manifest.bytes.length);
      new DataView(data.buffer).setBigUint64(0, BigInt(parts.bytes.length), true);
      data.set(parts.bytes, 8);
      data.set(manifest.bytes, 8 + parts.bytes.length);
      const label = {
        date: '2099-01-01-00-00-00',
        createdAt: 0,
        formatVersion: 99,
        poolUuid: '',
        srUuid: ring.srUuid,
        vmCount: 0,
        templateCount: 0,
        rawBytes: 0,
      };
      await ring.append({ label: new TextEncoder().encode(JSON.stringify(label)), data });
      await ring.close();
    }
    const before = await vmCount(p.sim.url);
    const newer = capture();
    expect(await xeRestore(['-d', '2099-01-01-00-00-00', '-y', '-f'], newer)).toBe(1);
    expect(newer.stderr[0]).toMatch(/BACKUP_FORMAT_UNSUPPORTED: .*format version 99.*up to 1/);
    // Without -d the newest backup is the future one: skipped with a line saying why, never
    // silently, and the newest restorable one is taken.
    const skipped = capture();
    expect(await xeRestore(['-y', '-f', '-n'], skipped)).toBe(0);
    expect(skipped.stderr.join('\n')).toMatch(
      /Skipping backup 2099-01-01-00-00-00 \(seq 3\), which cannot be restored: BACKUP_FORMAT_UNSUPPORTED: .*format version 99/,
    );
    expect(skipped.stdout.join('\n')).toMatch(/Would restore VM/);

    // Flip one byte inside record 2's payload: refused with its seq and the nearest good one.
    const list = capture();
    await xsmeta(['list', '--json'], list);
    const rows = JSON.parse(list.stdout[0]!) as {
      seq: number;
      date: string;
      storedBytes: number;
    }[];
    const r1 = rows.find((r) => r.seq === 1)!;
    const r2 = rows.find((r) => r.seq === 2)!;
    const offset = 256 * 1024 + Math.ceil((64 + r1.storedBytes) / 4096) * 4096 + 64 + 10;
    const fh = await open(img, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0]! ^= 1;
    await fh.write(b, 0, 1, offset);
    await fh.close();
    const damaged = capture();
    expect(await xeRestore(['-d', r2.date, '-y', '-f'], damaged)).toBe(1);
    expect(damaged.stderr[0]).toContain(`BACKUP_DAMAGED: backup ${r2.date} (seq 2) is damaged`);
    expect(damaged.stderr[0]).toMatch(/nearest other backup is/);
    expect(await vmCount(p.sim.url)).toBe(before);
    // The events say why.
    const h = capture();
    await xsmeta(['history', '--kind', 'restore', '--json'], h);
    const refused = (JSON.parse(h.stdout[0]!) as { outcome: string; code: string }[])
      .filter((r) => r.outcome === 'REFUSED')
      .map((r) => r.code);
    // Newest first.
    expect(refused).toEqual(['BACKUP_DAMAGED', 'BACKUP_FORMAT_UNSUPPORTED']);
  });
  await p.close();
}, 300_000);
