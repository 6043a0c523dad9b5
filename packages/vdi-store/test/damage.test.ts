import { describe, expect, it } from 'vitest';
import { type BlockDevice, MemoryDevice, Ring, RingError } from '../src/index.js';
import { BLOCK, DATA_START, ROOT_SIZE } from '../src/ring/layout.js';
import { contents, freshRing, label, payload, sha } from './helpers.js';

async function verifyMap(img: Uint8Array) {
  const ring = await Ring.open(new MemoryDevice(img));
  const rep = await ring.verify();
  return { ring, rep, bad: rep.records.filter((r) => !r.ok).map((r) => r.seq) };
}

/** Reads an image with at most one bit flipped (`flip`), never copying more than is read. */
class FlipDevice implements BlockDevice {
  readonly readOnly = true;
  readonly size: number;
  flip: { pos: number; mask: number } | undefined;
  constructor(private readonly image: Uint8Array) {
    this.size = image.length;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    const out = this.image.slice(offset, offset + length);
    const f = this.flip;
    if (f && f.pos >= offset && f.pos < offset + length) out[f.pos - offset]! ^= f.mask;
    return out;
  }
  async write(): Promise<void> {
    throw new Error('read-only');
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

/** A ring of three records and where each lives. */
async function sample(size = DATA_START + 16 * BLOCK) {
  const { dev, ring } = await freshRing(size);
  const sizes = [5000, 9000, 3000];
  for (let i = 0; i < 3; i++)
    await ring.append({ label: label(`${i}`), data: payload(i + 1, sizes[i]!) });
  return { dev, ring, image: dev.snapshot(), spans: ring.usage().records, sizes };
}

describe('damage is detected and attributed', () => {
  it('every single bit flip in a tiny ring is caught (exhaustive)', async () => {
    const { image, spans, sizes } = await sample();
    // One ring over a device that shows the image with one bit flipped, the flip moved between
    // checks: open reads only the two root copies, which no flip here touches, so this checks
    // exactly what re-opening a damaged copy would, without copying the image thousands of times.
    const dev = new FlipDevice(image);
    const ring = await Ring.open(dev);
    const want = new Map(spans.map((s) => [s.seq, sha(payload(s.seq, sizes[s.seq - 1]!))]));
    let checked = 0;
    const used = spans.map((s) => ({
      ...s,
      from: DATA_START + s.offset,
      to: DATA_START + s.offset + 64 + sizes[s.seq - 1]!,
    }));
    for (const s of used) {
      for (let pos = s.from; pos < s.to; pos += pos - s.from < 64 ? 1 : 7) {
        for (const bit of [0, 5]) {
          dev.flip = { pos, mask: 1 << bit };
          const rep = await ring.verify();
          expect(rep.records.filter((r) => !r.ok).map((r) => r.seq)).toEqual([s.seq]);
          for (const other of used.filter((o) => o.seq !== s.seq)) {
            expect(sha(await ring.readAll(other.seq))).toBe(want.get(other.seq));
          }
          checked++;
        }
      }
    }
    dev.flip = undefined;
    expect((await ring.verify()).ok).toBe(true);
    expect(checked).toBeGreaterThan(2000);
  }, 300_000);

  it('a bit flip in either root copy is reported and loses no record', async () => {
    const { image } = await sample();
    const want = await contents(await Ring.open(new MemoryDevice(image)));
    const flipped = new FlipDevice(image);
    for (let pos = 0; pos < 256 + 3 * 560; pos += 3) {
      for (const base of [0, ROOT_SIZE]) {
        // Past a copy's entries its bytes are unused (and unchecked).
        if (pos >= 256 + new DataView(image.buffer).getUint16(base + 14, true) * 560) continue;
        flipped.flip = { pos: base + pos, mask: 0x10 };
        const r = await Ring.open(flipped, { readOnly: true });
        // The newest copy damaged: the previous generation plus record 3 found from its header.
        expect(await contents(r)).toEqual(want);
        expect(r.status.ok).toBe(false);
        expect(r.status.warnings.join(' ')).toMatch(/root copy [01] is (damaged|blank)/);
        expect((await r.verify()).ok).toBe(false);
      }
    }
  }, 300_000);

  it('thousands of random flips on a larger ring are caught or harmless', async () => {
    const { dev, ring } = await freshRing(DATA_START + 128 * BLOCK);
    for (let i = 1; i <= 6; i++)
      await ring.append({ label: label(`${i}`), data: payload(i, 60_000) });
    const image = dev.snapshot();
    const good = new Map((await contents(ring)).map((c) => c.split(':') as [string, string]));
    const flipped = new FlipDevice(image);
    let rnd = 7;
    let opened = 0;
    for (let n = 0; n < 2000; n++) {
      rnd = (rnd * 1103515245 + 12345) >>> 0;
      flipped.flip = { pos: rnd % image.length, mask: 1 << (rnd & 7) };
      let r: Ring;
      try {
        r = await Ring.open(flipped);
      } catch (e) {
        expect(e).toBeInstanceOf(RingError);
        continue;
      }
      opened++;
      // Only one record could have been touched; every record that reads must be intact.
      let damaged = 0;
      for (const rec of r.list()) {
        let bytes: Uint8Array;
        try {
          bytes = await r.readAll(rec.seq);
        } catch (e) {
          expect((e as RingError).code).toBe('RING_CORRUPT');
          damaged++;
          continue;
        }
        expect(sha(bytes)).toBe(good.get(String(rec.seq)));
      }
      expect(damaged).toBeLessThanOrEqual(1);
    }
    // Most flips land in records, not in the roots: the rings that opened were checked.
    expect(opened).toBeGreaterThan(1000);
  }, 300_000);

  it('a stale record from an earlier lap is refused', async () => {
    const { dev, ring } = await freshRing(DATA_START + 16 * BLOCK);
    await ring.append({ label: label('1'), data: payload(1, 10_000), keep: 1 });
    const lap1 = dev.snapshot();
    for (let i = 2; i <= 6; i++)
      await ring.append({ label: label(`${i}`), data: payload(i, 10_000), keep: 1 });
    const r3 = ring.usage().records[0]!;
    expect(r3.offset).toBe(0);
    // Replay lap one's bytes at record 3's place (a stale sector that was never overwritten).
    const img = dev.snapshot();
    img.set(
      lap1.subarray(DATA_START + r3.offset, DATA_START + r3.offset + r3.size),
      DATA_START + r3.offset,
    );
    const { bad, rep } = await verifyMap(img);
    expect(bad).toEqual([6]);
    expect(rep.records[0]!.error).toMatch(/stale|checksum|header/);
  });

  it('a valid record written at the wrong offset is refused', async () => {
    const { image, spans } = await sample();
    const [a, b] = spans as [
      { offset: number; size: number; seq: number },
      { offset: number; size: number; seq: number },
    ];
    const img = image.slice();
    // Copy record 1's header over record 2's header: a misdirected write.
    img.set(
      image.subarray(DATA_START + a.offset, DATA_START + a.offset + 64),
      DATA_START + b.offset,
    );
    const { bad } = await verifyMap(img);
    expect(bad).toEqual([b.seq]);
  });

  it('truncation keeps every record wholly inside the device readable, reports the rest', async () => {
    const { image, spans, sizes } = await sample();
    for (const cut of [
      image.length - 4096,
      DATA_START + spans[2]!.offset + 100,
      DATA_START + spans[1]!.offset,
      DATA_START + 10,
    ]) {
      const r = await Ring.open(new MemoryDevice(image.slice(0, cut)), { readOnly: true });
      expect(r.status.truncatedTo).toBe(cut);
      expect(r.status.ok).toBe(false);
      const rep = await r.verify();
      expect(rep.ok).toBe(false);
      for (const s of spans) {
        const inside = DATA_START + s.offset + 64 + sizes[s.seq - 1]! <= cut;
        const rec = rep.records.find((x) => x.seq === s.seq)!;
        expect(rec.ok).toBe(inside);
        if (inside)
          expect(sha(await r.readAll(s.seq))).toBe(sha(payload(s.seq, sizes[s.seq - 1]!)));
        else expect(rec.code).toBe('RING_TRUNCATED');
      }
      // Nothing is written to a shortened device.
      const w = await Ring.open(new MemoryDevice(image.slice(0, cut)));
      await expect(w.append({ label: label('x'), data: payload(9, 10) })).rejects.toMatchObject({
        code: 'RING_TRUNCATED',
      });
    }
    for (const cut of [1000, ROOT_SIZE + 10]) {
      const err = await Ring.open(new MemoryDevice(image.slice(0, cut))).catch((e) => e);
      expect(err).toBeInstanceOf(RingError);
      expect(['RING_TRUNCATED', 'RING_NOT_FORMATTED']).toContain(err.code);
    }
  });
});
