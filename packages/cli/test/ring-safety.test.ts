import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { openFileDevice, Ring, writeArchive } from '@xsmeta/vdi-store';
import { expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { allEvents, capture, pool, withEnv } from './support.js';

function ringImage(dir: string): string {
  return readdirSync(join(dir, 'sim', 'sr'), { recursive: true })
    .map((f) => join(dir, 'sim', 'sr', String(f)))
    .find((f) => f.endsWith('.img') && statSync(f).size === 500 * 1024 * 1024)!;
}

async function patch(path: string, at: number, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, at);
  } finally {
    await fh.close();
  }
}

const dataSha = (path: string) =>
  createHash('sha256')
    .update(readFileSync(path).subarray(256 * 1024))
    .digest('hex');

async function seqs(): Promise<number[]> {
  const io = capture();
  expect(await xsmeta(['list', '--json'], io)).toBe(0);
  return (JSON.parse(io.stdout[0]!) as { seq: number }[]).map((r) => r.seq);
}

type Pool = Awaited<ReturnType<typeof pool>>;

/**
 * A pool of `vms` VMs with `backups` backups taken (the first with --create): runs `body` in its
 * environment with the ring's image file, then closes the pool.
 */
async function withBackups(
  vms: number,
  backups: number,
  body: (img: string, p: Pool) => Promise<void>,
): Promise<void> {
  const p = await pool({ vms });
  try {
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      for (let i = 1; i < backups; i++) expect(await xsmeta(['backup'], capture())).toBe(0);
      await body(ringImage(p.dir), p);
    });
  } finally {
    await p.close();
  }
}

it('a flipped bit in the current root copy: list warns and keeps the newest backup, verify fails, the next backup takes a new seq', () =>
  withBackups(3, 3, async (img, p) => {
    // Generation 4 (three appends after format's 1) lives in copy 0: flip a bit of its count.
    const fh = await open(img, 'r+');
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, 16);
    expect(b[0]).toBe(4);
    b[0]! ^= 0x40;
    await fh.write(b, 0, 1, 16);
    await fh.close();
    const list = capture();
    expect(await xsmeta(['list'], list)).toBe(0);
    expect(list.stdout).toHaveLength(3);
    expect(list.stderr.join('\n')).toMatch(
      /warning: backup disk root: root copy 0 is damaged .*record\(s\) 3 were committed/s,
    );
    const verify = capture();
    expect(await xsmeta(['verify'], verify)).toBe(1);
    expect(verify.stdout[0]).toMatch(/^root: root copy 0 is damaged/);
    // The next backup says what it recovered, records it, and writes the root back.
    const next = capture();
    expect(await xsmeta(['backup'], next)).toBe(0);
    expect(next.stderr.join('\n')).toMatch(/warning: backup disk root: root copy 0 is damaged/);
    expect(await seqs()).toEqual([4, 3, 2, 1]);
    expect(await xsmeta(['verify'], capture())).toBe(0);
    const written = (
      (await allEvents(p.env.XSMETA_STATE_DIR!)) as unknown as {
        type: string;
        data: { seq: number; rootWarnings?: string[] };
      }[]
    ).filter((e) => e.type === 'BackupWritten');
    expect(written.map((e) => e.data.seq)).toEqual([1, 2, 3, 4]);
    expect(written[3]!.data.rootWarnings?.join(' ')).toMatch(/record\(s\) 3 were committed/);
    expect(written[2]!.data.rootWarnings).toBeUndefined();
  }));

it('a zeroed root area: listed by a scan, backup refuses and points to repair, repair rebuilds it', () =>
  withBackups(3, 3, async (img) => {
    await patch(img, 0, new Uint8Array(256 * 1024));
    const data = dataSha(img);
    const list = capture();
    expect(await xsmeta(['list', '--json'], list)).toBe(0);
    expect(JSON.parse(list.stdout[0]!).map((r: { seq: number }) => r.seq)).toEqual([3, 2, 1]);
    expect(list.stderr.join('\n')).toMatch(/both root copies are blank.*xsmeta repair/);
    expect(await xsmeta(['verify'], capture())).toBe(1);
    // Neither the old script's interface nor xsmeta formats over the records.
    const refused = capture();
    expect(await xeBackup([], refused)).not.toBe(0);
    expect(refused.stderr.join('\n')).toMatch(/RING_ROOT_LOST: .*xsmeta repair/);
    expect(await xsmeta(['backup'], capture())).not.toBe(0);
    expect(dataSha(img)).toBe(data);
    // repair: a dry run first, changing nothing.
    const dry = capture();
    expect(await xsmeta(['repair'], dry)).toBe(0);
    expect(dry.stdout.join('\n')).toMatch(/Would rebuild the root to list 3 backup\(s\)/);
    expect(dataSha(img)).toBe(data);
    const done = capture();
    expect(await xsmeta(['repair', '--yes'], done)).toBe(0);
    expect(done.stdout.join('\n')).toMatch(/Rebuilt the root: it lists 3 backup\(s\)/);
    const verify = capture();
    expect(await xsmeta(['verify'], verify)).toBe(0);
    expect(await xsmeta(['backup'], capture())).toBe(0);
    expect(await seqs()).toEqual([4, 3, 2, 1]);
    const again = capture();
    expect(await xsmeta(['repair'], again)).toBe(0);
    expect(again.stdout.join('\n')).toMatch(/nothing to repair/);
  }));

it('verify decodes every part as restore would: a record restore refuses fails verify, by seq', () =>
  withBackups(2, 1, async (img) => {
    const ring = await Ring.open(await openFileDevice(img));
    // Intact checksums, but written by a "newer" format and with a part the manifest omits.
    const manifest = await writeArchive([
      {
        name: 'manifest.json',
        data: new TextEncoder().encode(JSON.stringify({ formatVersion: 99, parts: [] })),
      },
    ]);
    const parts = await writeArchive([{ name: 'vm-map.json', data: new Uint8Array(2) }]);
    const data = new Uint8Array(8 + parts.bytes.length + manifest.bytes.length);
    new DataView(data.buffer).setBigUint64(0, BigInt(parts.bytes.length), true);
    data.set(parts.bytes, 8);
    data.set(manifest.bytes, 8 + parts.bytes.length);
    await ring.append({ label: new TextEncoder().encode('{}'), data });
    await ring.close();
    const v = capture();
    expect(await xsmeta(['verify', '--json'], v)).toBe(1);
    expect(JSON.parse(v.stdout[0]!).records).toEqual([
      { seq: 2, ok: false, error: expect.stringMatching(/format version 99/) },
      { seq: 1, ok: true },
    ]);
  }));

it('only -i (confirmed) starts a new ring over backups whose root is lost', () =>
  withBackups(2, 2, async (img) => {
    await patch(img, 0, new Uint8Array(256 * 1024));
    expect(await xeBackup([], capture())).not.toBe(0);
    expect(await xeBackup(['-i', '-y'], capture())).toBe(0);
    expect(await seqs()).toEqual([1]);
    expect(await xsmeta(['verify'], capture())).toBe(0);
  }));
