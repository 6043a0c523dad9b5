// Off-site copies against the simulator: export, import (into another SR, --create), copy
// into a folder (skipping what is there, keeping the newest N) and restore --from FILE.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type PoolRecord, type SrRecord, XapiClient } from '@xsmeta/xapi';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { describe, expect, it } from 'vitest';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

describe('off-site copies', () => {
  it('export, import into another SR, copy to a folder, restore --from FILE', async () => {
    const p = await pool({ vms: 3, srs: 2 });
    const xapi = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const [poolRec] = (await xapi.getAllRecords<PoolRecord>('pool')).values();
    const srs = [...(await xapi.getAllRecords<SrRecord>('SR')).entries()];
    const home = srs.find(([ref]) => ref === poolRec!.default_SR)![1].uuid;
    const other = srs.find(
      ([ref, r]) => ref !== poolRec!.default_SR && r.content_type !== 'iso',
    )![1].uuid;
    await xapi.logout();
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      expect(await xsmeta(['backup'], capture())).toBe(0);
      const file = join(p.dir, 'b2.xsmcopy');
      expect(await xsmeta(['export', '--seq', '2', '--out', file], capture())).toBe(0);
      const bytes = readFileSync(file);
      const [magic, head] = bytes.subarray(0, 4096).toString('latin1').split('\n');
      expect(magic).toBe('XSMETA-COPY 1');
      const h = JSON.parse(head!) as Record<string, unknown>;
      expect(h).toMatchObject({ formatVersion: 1, srUuid: home, seq: 2, poolUuid: poolRec!.uuid });
      expect(h.date).toMatch(/^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$/);

      // A flipped byte is refused before anything is written.
      const bad = Buffer.from(bytes);
      bad[bad.length - 200]! ^= 1;
      const badFile = join(p.dir, 'bad.xsmcopy');
      writeFileSync(badFile, bad);
      const refused = capture();
      expect(await xsmeta(['import', badFile, '--sr', other, '--create'], refused)).toBe(1);
      expect(refused.stderr.join('\n')).toMatch(/COPY_FILE_INVALID: the copy is damaged/);

      // Into the other SR's ring (made by --create), once only.
      expect(await xsmeta(['import', file, '--sr', other, '--create'], capture())).toBe(0);
      const again = capture();
      expect(await xsmeta(['import', file, '--sr', other], again)).toBe(0);
      expect(again.stderr.join('\n')).toMatch(/already in the ring/);
      const list = capture();
      expect(await xsmeta(['list', '--sr', other, '--json'], list)).toBe(0);
      const rows = JSON.parse(list.stdout[0]!) as { date: string; srUuid: string }[];
      expect(rows.map((r) => r.date)).toEqual([h.date]);

      // copy: two files, then nothing new; a third backup with --keep 2 drops the oldest.
      const dir = join(p.dir, 'offsite');
      const c1 = capture();
      expect(await xsmeta(['copy', '--to', dir], c1)).toBe(0);
      expect(c1.stdout).toEqual(['Copied 2 backup(s), 0 already there, 0 old copy(ies) removed']);
      const c2 = capture();
      expect(await xsmeta(['copy', '--to', dir], c2)).toBe(0);
      expect(c2.stdout).toEqual(['Copied 0 backup(s), 2 already there, 0 old copy(ies) removed']);
      expect(await xsmeta(['backup'], capture())).toBe(0);
      const c3 = capture();
      expect(await xsmeta(['copy', '--to', dir, '--keep', '2'], c3)).toBe(0);
      expect(c3.stdout).toEqual(['Copied 1 backup(s), 2 already there, 1 old copy(ies) removed']);
      expect(readdirSync(dir).filter((f) => f.endsWith('.xsmcopy'))).toHaveLength(2);

      // restore --from FILE: the same VMs as the ring's own restore of that backup.
      const fromRing = capture();
      expect(
        await xsmeta(
          ['restore', '--date', String(h.date), '--dry-run', '--force', '--json'],
          fromRing,
        ),
      ).toBe(0);
      const fromFile = capture();
      expect(
        await xsmeta(['restore', '--from', file, '--dry-run', '--force', '--json'], fromFile),
      ).toBe(0);
      const a = JSON.parse(fromRing.stdout[0]!) as { restored: number; errors: number };
      const b = JSON.parse(fromFile.stdout[0]!) as { restored: number; errors: number };
      expect(b.restored).toBeGreaterThan(0);
      expect([b.restored, b.errors]).toEqual([a.restored, a.errors]);
      const xe = capture();
      expect(await xeRestore(['--from', file, '-n', '-f'], xe)).toBe(0);
      expect(xe.stdout.at(-1)).toBe(`Restored ${a.restored} VM(s), and 0 error(s)`);
      const damaged = capture();
      expect(await xsmeta(['restore', '--from', badFile, '--dry-run'], damaged)).toBe(1);
      expect(damaged.stderr.join('\n')).toMatch(/COPY_FILE_INVALID/);
    });
    await p.close();
  }, 120_000);

  it('an encrypted copy is restorable only with its identity; its header stays readable', async () => {
    const p = await pool({ vms: 3, srs: 1 });
    const id = await generateIdentity();
    const recipient = await identityToRecipient(id);
    const idFile = join(p.dir, 'key.txt');
    writeFileSync(idFile, `# created by the test\n${id}\n`, { mode: 0o600 });
    const wrongFile = join(p.dir, 'wrong.txt');
    writeFileSync(wrongFile, `${await generateIdentity()}\n`);
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      const plain = join(p.dir, 'plain.xsmcopy');
      const sealed = join(p.dir, 'sealed.xsmcopy');
      expect(await xsmeta(['export', '--seq', '1', '--out', plain], capture())).toBe(0);
      const bad = capture();
      expect(
        await xsmeta(['export', '--seq', '1', '--out', sealed, '--encrypt-to', 'x'], bad),
      ).toBe(2);
      const ex = capture();
      const code = await xsmeta(
        ['export', '--seq', '1', '--out', sealed, '--encrypt-to', recipient],
        ex,
      );
      expect(ex.stderr).toEqual([expect.stringMatching(/written to/)]);
      expect(code).toBe(0);
      const bytes = readFileSync(sealed);
      const lines = bytes.subarray(0, 4096).toString('latin1').split('\n');
      const h = JSON.parse(lines[1]!) as Record<string, unknown>;
      expect(h.encryption).toBe('age');
      expect(lines[2]).toBe('age-encryption.org/v1');
      // The plain record's bytes appear nowhere in the sealed file.
      const plainHead = JSON.parse(
        readFileSync(plain).subarray(0, 4096).toString('latin1').split('\n')[1]!,
      ) as { size: number };
      const plainRecord = readFileSync(plain).subarray(-(plainHead.size + 73), -73);
      expect(bytes.indexOf(plainRecord.subarray(100, 164))).toBe(-1);
      expect(h.sha256).toBe(
        (JSON.parse(readFileSync(plain).toString('latin1').split('\n')[1]!) as { sha256: string })
          .sha256,
      );

      const none = capture();
      expect(await xsmeta(['restore', '--from', sealed, '--dry-run', '--force'], none)).toBe(2);
      expect(none.stderr.join('\n')).toMatch(/is encrypted: give the age identity file/);
      const wrong = capture();
      expect(
        await xsmeta(
          ['restore', '--from', sealed, '--identity', wrongFile, '--dry-run', '--force'],
          wrong,
        ),
      ).toBe(1);
      expect(wrong.stderr.join('\n')).toMatch(/COPY_DECRYPT_FAILED/);
      const ok = capture();
      expect(
        await xsmeta(
          ['restore', '--from', sealed, '--identity', idFile, '--dry-run', '--force', '--json'],
          ok,
        ),
      ).toBe(0);
      const viaPlain = capture();
      expect(
        await xsmeta(['restore', '--from', plain, '--dry-run', '--force', '--json'], viaPlain),
      ).toBe(0);
      const n = (JSON.parse(viaPlain.stdout[0]!) as { restored: number }).restored;
      expect(n).toBeGreaterThan(0);
      expect(JSON.parse(ok.stdout[0]!)).toMatchObject({ restored: n, errors: 0 });
      const xe = capture();
      expect(await xeRestore(['--from', sealed, '--identity', idFile, '-n', '-f'], xe)).toBe(0);
      expect(xe.stdout.at(-1)).toBe(`Restored ${n} VM(s), and 0 error(s)`);

      expect(await xsmeta(['import', sealed], capture())).toBe(2);
      const imp = capture();
      expect(await xsmeta(['import', sealed, '--identity', idFile], imp)).toBe(0);
      expect(imp.stderr.join('\n')).toMatch(/already in the ring/);

      // copy --encrypt-to: sealed files, recognised again by their clear headers.
      const dir = join(p.dir, 'offsite');
      expect(await xsmeta(['copy', '--to', dir, '--encrypt-to', recipient], capture())).toBe(0);
      const again = capture();
      expect(await xsmeta(['copy', '--to', dir, '--encrypt-to', recipient], again)).toBe(0);
      expect(again.stdout).toEqual([
        'Copied 0 backup(s), 1 already there, 0 old copy(ies) removed',
      ]);
      const [f] = readdirSync(dir);
      expect(readFileSync(join(dir, f!)).toString('latin1')).toContain('"encryption":"age"');
    });
    await p.close();
  }, 120_000);
});
