import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type BlockDevice, MemoryDevice, Ring, RingError } from '../src/index.js';
import { BLOCK, DATA_START } from '../src/ring/layout.js';
import { label, payload, SR, VDI } from './helpers.js';

const ID = { vdiUuid: VDI, srUuid: SR };
const MiB = 1024 * 1024;
const admin = generateKeyPairSync('ed25519');
const intruder = generateKeyPairSync('ed25519');

/** An image with some bytes flipped, cut to `size` bytes; every read is logged. */
class Damaged implements BlockDevice {
  readonly readOnly = true;
  readonly reads: { offset: number; length: number }[] = [];
  /** The buffers read into (readInto). */
  readonly targets = new Set<ArrayBufferLike>();
  inFlight = 0;
  peak = 0;
  constructor(
    private readonly image: Uint8Array,
    readonly size: number,
    private readonly flips: Map<number, number> = new Map(),
  ) {}
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset + length > this.size) throw new RingError('RING_TRUNCATED', 'past the end');
    this.reads.push({ offset, length });
    this.peak = Math.max(this.peak, ++this.inFlight);
    await new Promise((r) => setImmediate(r));
    this.inFlight--;
    const out = this.image.slice(offset, offset + length);
    for (const [pos, mask] of this.flips)
      if (pos >= offset && pos < offset + length) out[pos - offset]! ^= mask;
    return out;
  }
  async write(): Promise<void> {
    throw new Error('read-only');
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** The same, reading into the caller's buffers (as the file device does). */
class DamagedInto extends Damaged {
  async readInto(offset: number, target: Uint8Array): Promise<void> {
    this.targets.add(target.buffer);
    target.set(await this.read(offset, target.length));
  }
}

/**
 * A ring whose records wrap around the end of the data area (so their order on the disk is not
 * their order of seq), of sizes around the read size (0 bytes, small, over 1 MiB), signed by the
 * admin key, one unsigned and one signed by another key.
 */
async function sampleRing() {
  const dev = new MemoryDevice(DATA_START + 4 * MiB);
  const ring = await Ring.format(dev, { ...ID, maxRecords: 6, signingKey: admin.privateKey });
  const sizes = [1.5 * MiB, 70_000, MiB + 37, 0, 3000, MiB - 64, MiB + 4096];
  let t = 0;
  for (const n of sizes)
    await ring.append({ label: label(`r${++t}`), data: payload(t, n), createdAt: t });
  await (await Ring.open(dev)).append({
    label: label('plain'),
    data: payload(50, 9000),
    createdAt: ++t,
  });
  await (await Ring.open(dev, { signingKey: intruder.privateKey })).append({
    label: label('other'),
    data: payload(51, 9000),
    createdAt: ++t,
  });
  return { image: dev.snapshot(), usage: (await Ring.open(dev, { readOnly: true })).usage() };
}

/** What a reader makes of each record: 'ok' or its error code. */
async function readerView(ring: Ring): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const { seq } of ring.list())
    out.set(
      seq,
      await ring.readAll(seq).then(
        () => 'ok',
        (e: RingError) => e.code,
      ),
    );
  return out;
}

describe('verify', () => {
  it('reads the disk front to back, each header with its payload, several reads in flight', async () => {
    const { image, usage } = await sampleRing();
    const offsets = usage.records.map((r) => r.offset);
    expect(offsets).not.toEqual([...offsets].sort((a, b) => a - b)); // the ring has wrapped
    for (const dev of [new Damaged(image, image.length), new DamagedInto(image, image.length)]) {
      const ring = await Ring.open(dev, { readOnly: true, verifyKey: admin.publicKey });
      dev.reads.length = 0;
      dev.peak = 0;
      dev.targets.clear();
      const rep = await ring.verify();
      const data = dev.reads.filter((r) => r.offset >= DATA_START);
      expect(data.every((r, i) => i === 0 || r.offset > data[i - 1]!.offset)).toBe(true);
      expect(data.some((r) => r.length === 64)).toBe(false);
      expect(dev.peak).toBeGreaterThan(1);
      // Reading into buffers, a few are reused for the whole disk.
      if (dev instanceof DamagedInto) {
        expect(dev.targets.size).toBeLessThan(data.length);
        expect(dev.targets.size).toBeLessThanOrEqual(8);
      }
      // The report stays newest first; the two forged records fail, the others pass.
      expect(rep.records.map((r) => r.seq)).toEqual(ring.list().map((r) => r.seq));
      expect(rep.records.filter((r) => !r.ok).map((r) => r.code)).toEqual([
        'RING_BAD_SIGNATURE',
        'RING_UNSIGNED',
      ]);
    }
  });

  it('fails exactly the records a reader refuses, with the same code (random damage)', async () => {
    const { image, usage } = await sampleRing();
    const used = usage.records.map((r) => [DATA_START + r.offset, r.size] as const);
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const seen = new Set<string>();
    for (let trial = 0; trial < 100; trial++) {
      const flips = new Map<number, number>();
      for (let k = rand(3); k >= 0; k--) {
        const [at, size] = used[rand(used.length)]!;
        // Mostly the header, the first bytes of the payload or the end (label, trailer).
        const where = [rand(64), rand(size), size - 1 - rand(4 * BLOCK)][rand(3)]!;
        flips.set(at + Math.max(0, where), 1 << rand(8));
      }
      // Now and then the device is cut short inside the data area.
      const cut = trial % 5 === 0 ? DATA_START + BLOCK + rand(image.length - DATA_START) : 0;
      const dev = new (trial % 2 ? DamagedInto : Damaged)(image, cut || image.length, flips);
      for (const verifyKey of [admin.publicKey, undefined]) {
        const ring = await Ring.open(dev, { readOnly: true, ...(verifyKey ? { verifyKey } : {}) });
        const rep = await ring.verify();
        const reader = await readerView(ring);
        for (const r of rep.records) {
          expect(r.ok ? 'ok' : r.code, `trial ${trial}, record ${r.seq}`).toBe(reader.get(r.seq));
          seen.add(r.ok ? 'ok' : r.code!);
        }
      }
    }
    // The trials reached every kind of refusal.
    expect([...seen].sort()).toEqual(
      ['RING_BAD_SIGNATURE', 'RING_CORRUPT', 'RING_TRUNCATED', 'RING_UNSIGNED', 'ok'].sort(),
    );
  });

  it('hands each record whole to the record check, and names the records it fails', async () => {
    const { image } = await sampleRing();
    const ring = await Ring.open(new Damaged(image, image.length), { readOnly: true });
    const got = new Map<number, number>();
    const rep = await ring.verify(undefined, async (bytes, seq) => {
      const want = await ring.readAll(seq);
      expect(Buffer.compare(bytes, want)).toBe(0);
      got.set(seq, bytes.length);
      if (seq % 2 === 0) throw Object.assign(new Error(`bad ${seq}`), { code: 'ARCHIVE_CORRUPT' });
    });
    expect([...got.keys()].sort()).toEqual(
      ring
        .list()
        .map((r) => r.seq)
        .sort(),
    );
    expect(rep.records.filter((r) => !r.ok).map((r) => r.seq)).toEqual(
      ring
        .list()
        .filter((r) => r.seq % 2 === 0)
        .map((r) => r.seq),
    );
    // An error that is no record's failure stops verify.
    await expect(
      ring.verify(undefined, async () => {
        throw new TypeError('a bug');
      }),
    ).rejects.toThrow('a bug');
  });
});
