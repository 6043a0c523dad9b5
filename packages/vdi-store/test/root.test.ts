import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MemoryDevice, Ring, RingError } from '../src/index.js';
import { BLOCK, DATA_START, ROOT_SIZE } from '../src/ring/layout.js';
import { contents, freshRing, label, payload, SR, sha, VDI } from './helpers.js';

const ID = { vdiUuid: VDI, srUuid: SR };

/** A ring of `n` records (payload i of 7000 + i bytes), its device and its image. */
async function ringOf(n: number, size = DATA_START + 64 * BLOCK) {
  const { dev, ring } = await freshRing(size);
  for (let i = 1; i <= n; i++)
    await ring.append({ label: label(`r${i}`), data: payload(i, 7000 + i), createdAt: 1000 * i });
  return { dev, ring, image: dev.snapshot() };
}

const want = (seqs: number[]) => seqs.map((s) => `${s}:${sha(payload(s, 7000 + s))}`);
const ro = (img: Uint8Array, expect?: typeof ID) =>
  Ring.open(new MemoryDevice(img), { readOnly: true, ...(expect ? { expect } : {}) });

describe('a damaged or rolled-back root is detected and recovered', () => {
  it('a replayed (older) root area: the newer records come back and seqs are not reused', async () => {
    const { dev, ring } = await ringOf(3);
    const old = dev.snapshot().slice(0, DATA_START);
    for (let i = 4; i <= 6; i++)
      await ring.append({ label: label(`r${i}`), data: payload(i, 7000 + i), createdAt: 1000 * i });
    const img = dev.snapshot();
    img.set(old, 0); // the root area of three backups ago
    const r = await ro(img.slice());
    expect(r.status.ok).toBe(false);
    expect(r.status.recovered).toEqual([4, 5, 6]);
    expect(await contents(r)).toEqual(want([6, 5, 4, 3, 2, 1]));
    expect(new TextDecoder().decode(r.list()[0]!.label)).toBe('r6');
    expect((await r.verify()).ok).toBe(false);
    // A backup then writes seq 7, not 4, and the root is whole again.
    const w = await Ring.open(new MemoryDevice(img));
    expect(w.status.repaired).toBe(true);
    const next = await w.append({ label: label('r7'), data: payload(7, 7007), createdAt: 7000 });
    expect(next.seq).toBe(7);
  });

  it('both copies damaged: the intact records are still listed and read (scan); writes refused until repair', async () => {
    const { image } = await ringOf(4);
    const img = image.slice();
    img[20]! ^= 1; // generation field of copy 0
    img[ROOT_SIZE + 300]! ^= 4; // an entry of copy 1
    const r = await ro(img.slice());
    expect(r.status.rebuilt).toBe(true);
    expect(r.status.warnings[0]).toMatch(
      /root copy 0: checksum mismatch; root copy 1: checksum mismatch/,
    );
    expect(await contents(r)).toEqual(want([4, 3, 2, 1]));
    expect((await r.verify()).ok).toBe(false);
    const dev = new MemoryDevice(img);
    const w = await Ring.open(dev);
    await expect(w.append({ label: label('x'), data: payload(9, 10) })).rejects.toMatchObject({
      code: 'RING_ROOT_LOST',
      message: expect.stringContaining('xsmeta repair'),
    });
    const dry = await Ring.repair(dev, { apply: false, expect: ID });
    expect(dry.written).toBe(false);
    expect(dry.records.map((x) => x.seq)).toEqual([1, 2, 3, 4]);
    const done = await Ring.repair(dev, { apply: true, expect: ID });
    expect(done.written).toBe(true);
    const healed = await Ring.open(dev);
    expect(healed.status).toMatchObject({ ok: true, warnings: [] });
    expect(await contents(healed)).toEqual(want([4, 3, 2, 1]));
    expect((await healed.append({ label: label('r5'), data: payload(5, 7005) })).seq).toBe(5);
  });

  it('a zeroed root area: listed by scan with the known identity, repaired with a derived nonce', async () => {
    const { image } = await ringOf(5);
    const img = image.slice();
    img.fill(0, 0, DATA_START);
    // Without the identity nothing can be rebuilt: a clear error, never "no backups".
    await expect(ro(img.slice())).rejects.toMatchObject({ code: 'RING_ROOT_LOST' });
    const r = await ro(img.slice(), ID);
    expect(r.status.rebuilt).toBe(true);
    expect(r.list().map((x) => new TextDecoder().decode(x.label))).toEqual([
      'r5',
      'r4',
      'r3',
      'r2',
      'r1',
    ]);
    expect(await contents(r)).toEqual(want([5, 4, 3, 2, 1]));
    const dev = new MemoryDevice(img);
    await Ring.repair(dev, { apply: true, expect: ID });
    const healed = await Ring.open(dev, { expect: ID });
    expect(healed.status.ok).toBe(true);
    expect((await healed.verify()).ok).toBe(true);
    expect((await healed.append({ label: label('r6'), data: payload(6, 7006) })).seq).toBe(6);
    expect((await Ring.open(dev)).list()[0]!.seq).toBe(6);
  });

  it('repair is a dry run by default and leaves a clean ring alone', async () => {
    const { dev, image } = await ringOf(2);
    const broken = image.slice();
    broken.fill(0, 0, DATA_START);
    const bdev = new MemoryDevice(broken);
    const rep = await Ring.repair(bdev, { apply: false, expect: ID });
    expect(rep.written).toBe(false);
    expect(sha(bdev.snapshot())).toBe(sha(broken));
    const clean = await Ring.repair(dev, { apply: true });
    expect(clean).toMatchObject({ clean: true, written: false });
    expect(sha(dev.snapshot())).toBe(sha(image));
  });

  it('repair refuses a disk with no root and no record (nothing to repair, nothing written)', async () => {
    const dev = new MemoryDevice(DATA_START + 32 * BLOCK);
    await expect(Ring.repair(dev, { apply: true, expect: ID })).rejects.toMatchObject({
      code: 'RING_NOT_FORMATTED',
    });
    expect(dev.snapshot().every((b) => b === 0)).toBe(true);
  });

  it('repair leaves out records of an earlier ring on the same disk', async () => {
    const { dev } = await ringOf(6);
    const ring = await Ring.format(dev, { ...ID, intent: 'reinitialise' });
    await ring.append({ label: label('new1'), data: payload(1, 7001), createdAt: 99_000 });
    const img = dev.snapshot();
    img.fill(0, 0, DATA_START);
    const rep = await Ring.repair(new MemoryDevice(img), { apply: false, expect: ID });
    expect(rep.records.map((x) => new TextDecoder().decode(x.label))).toEqual(['new1']);
    expect(rep.ignored.length).toBeGreaterThan(0);
  });
});

describe('nothing formats over records', () => {
  it('a blank root area over record headers: open does not say "empty", format refuses and points to repair', async () => {
    const { image } = await ringOf(5);
    const img = image.slice();
    img.fill(0, 0, DATA_START);
    const dev = new MemoryDevice(img);
    const err = await Ring.format(dev, ID).catch((e) => e);
    expect(err).toBeInstanceOf(RingError);
    expect(err.code).toBe('RING_NOT_EMPTY');
    expect(err.message).toMatch(/5 xsmeta record header\(s\).*xsmeta repair/);
    expect(sha(dev.snapshot())).toBe(sha(img));
    // Even with the first data block gone too (open then sees no ring), format still refuses.
    img.fill(0, DATA_START, DATA_START + BLOCK);
    await expect(ro(img.slice())).rejects.toMatchObject({ code: 'RING_NOT_FORMATTED' });
    await expect(Ring.format(new MemoryDevice(img), ID)).rejects.toMatchObject({
      code: 'RING_NOT_EMPTY',
    });
    // Only the explicit intent starts afresh.
    const fresh = await Ring.format(new MemoryDevice(img), { ...ID, intent: 'reinitialise' });
    expect(fresh.list()).toEqual([]);
  });

  it('format refuses a disk that holds a valid ring', async () => {
    const { dev } = await ringOf(1);
    await expect(Ring.format(dev, ID)).rejects.toMatchObject({ code: 'RING_NOT_EMPTY' });
    expect((await Ring.open(dev)).list()).toHaveLength(1);
  });
});

describe('format versions', () => {
  it('a version 1 ring (labels only in the index) still opens, reads, verifies and takes appends', async () => {
    const img = new Uint8Array(
      gunzipSync(readFileSync(new URL('./fixtures/ring-v1.img.gz', import.meta.url))),
    );
    const r = await ro(img.slice());
    expect(r.status.ok).toBe(true);
    expect(r.list().map((x) => [x.seq, new TextDecoder().decode(x.label)])).toEqual([
      [4, 'v1 record 4'],
      [3, 'v1 record 3'],
      [2, 'v1 record 2'],
    ]);
    expect((await r.verify()).ok).toBe(true);
    expect(sha(await r.readAll(3))).toBe(sha(payload(3, 10_000)));
    const dev = new MemoryDevice(img);
    const w = await Ring.open(dev);
    await w.append({ label: label('v2'), data: payload(5, 10_000), createdAt: 5000 });
    const again = await Ring.open(dev);
    expect(again.list().map((x) => x.seq)).toEqual([5, 4, 3]);
    expect((await again.verify()).ok).toBe(true);
  });
});

it('a zeroed root of a ring that kept more than 25: repair keeps every intact record', async () => {
  const { dev, ring } = await freshRing(DATA_START + 128 * BLOCK, 40);
  for (let i = 1; i <= 30; i++)
    await ring.append({ label: label(`r${i}`), data: payload(i, 100), createdAt: i });
  const img = dev.snapshot();
  img.fill(0, 0, DATA_START);
  const rep = await Ring.repair(new MemoryDevice(img), { apply: false, expect: ID });
  expect(rep.records).toHaveLength(30);
  expect(rep.ignored).toEqual([]);
});
