import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { openFileDevice, Ring, writeArchive } from '@xsmeta/vdi-store';
import { expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

function ringImage(dir: string): string {
  return readdirSync(join(dir, 'sim', 'sr'), { recursive: true })
    .map((f) => join(dir, 'sim', 'sr', String(f)))
    .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
}

it('keys init, signed backups; with the verify key, verify and restore refuse a forged unsigned backup', async () => {
  const p = await pool({ vms: 2 });
  try {
    await withEnv(p.env, async () => {
      const keys = join(p.dir, 'keys');
      const init = capture();
      expect(await xsmeta(['keys', 'init', '--dir', keys], init)).toBe(0);
      const priv = join(keys, 'xsmeta-signing-key.pem');
      const pub = join(keys, 'xsmeta-verify-key.pem');
      expect(statSync(priv).mode & 0o777).toBe(0o600);
      expect(init.stdout.join('\n')).toContain(`XSMETA_SIGNING_KEY=${priv}`);
      // Never overwrites a key.
      const again = capture();
      expect(await xsmeta(['keys', 'init', '--dir', keys], again)).toBe(1);
      expect(again.stderr[0]).toMatch(/KEY_EXISTS: .*already exists/);

      await withEnv({ XSMETA_SIGNING_KEY: priv }, async () => {
        expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      });
      // A pool user who can attach the VDI appends a forged backup (no key).
      const img = ringImage(p.dir);
      const ring = await Ring.open(await openFileDevice(img));
      const parts = await writeArchive([
        { name: 'vm-map.json', data: new TextEncoder().encode('[]') },
      ]);
      const manifest = await writeArchive([
        {
          name: 'manifest.json',
          data: new TextEncoder().encode(
            JSON.stringify({ formatVersion: 1, parts: parts.parts, poolUuid: '' }),
          ),
        },
      ]);
      const data = new Uint8Array(8 + parts.bytes.length + manifest.bytes.length);
      new DataView(data.buffer).setBigUint64(0, BigInt(parts.bytes.length), true);
      data.set(parts.bytes, 8);
      data.set(manifest.bytes, 8 + parts.bytes.length);
      const label = { date: '2099-01-01-00-00-00', formatVersion: 1, vmCount: 0 };
      await ring.append({ label: new TextEncoder().encode(JSON.stringify(label)), data });
      await ring.close();

      // Without a verify key: as before, both verify.
      expect(await xsmeta(['verify'], capture())).toBe(0);
      await withEnv({ XSMETA_VERIFY_KEY: pub }, async () => {
        const v = capture();
        expect(await xsmeta(['verify', '--json'], v)).toBe(1);
        expect(JSON.parse(v.stdout[0]!).records).toEqual([
          { seq: 2, ok: false, error: expect.stringMatching(/not signed/) },
          { seq: 1, ok: true },
        ]);
        const asked = capture();
        expect(await xsmeta(['restore', '--date', '2099-01-01-00-00-00', '--dry-run'], asked)).toBe(
          1,
        );
        expect(asked.stderr.join('\n')).toMatch(/RING_UNSIGNED: record 2 is not signed/);
        const dflt = capture();
        expect(await xsmeta(['restore', '--dry-run', '--force'], dflt)).toBe(0);
        expect(dflt.stderr.join('\n')).toMatch(
          /Skipping backup 2099-01-01-00-00-00 \(seq 2\), which cannot be restored: RING_UNSIGNED/,
        );
      });
    });
  } finally {
    await p.close();
  }
});
