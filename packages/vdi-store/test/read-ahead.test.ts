import { describe, expect, it } from 'vitest';
import { MemoryDevice, Ring, RingError } from '../src/index.js';
import { label, payload, SR, sha, VDI } from './helpers.js';

const MiB = 1024 * 1024;

/** A device that counts reads in flight, and fails its reads from the `failFrom`-th on. */
class Watched extends MemoryDevice {
  inFlight = 0;
  peak = 0;
  reads = 0;
  failFrom = Number.POSITIVE_INFINITY;
  override async read(offset: number, length: number): Promise<Uint8Array> {
    const n = ++this.reads;
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    try {
      await new Promise((r) => setImmediate(r));
      if (n >= this.failFrom) throw new RingError('RING_IO', `read ${n} failed`);
      return await super.read(offset, length);
    } finally {
      this.inFlight--;
    }
  }
}

describe('ring reads ahead', () => {
  it('keeps more than one read in flight and hands out the record whole, in order', async () => {
    const dev = new Watched(32 * MiB);
    const ring = await Ring.format(dev, { vdiUuid: VDI, srUuid: SR });
    const data = payload(7, 5 * MiB + 123);
    const { seq } = await ring.append({ label: label('x'), data });
    dev.peak = 0;
    expect(sha(await ring.readAll(seq))).toBe(sha(data));
    expect(dev.peak).toBeGreaterThan(1);
    expect((await ring.verify()).ok).toBe(true);
  });

  it('a read failing part-way fails the read with its error, also when the reader stops', async () => {
    const dev = new Watched(32 * MiB);
    const ring = await Ring.format(dev, { vdiUuid: VDI, srUuid: SR });
    const { seq } = await ring.append({ label: label('x'), data: payload(3, 6 * MiB) });
    dev.reads = 0;
    dev.failFrom = 4; // the header, then the data's third chunk
    await expect(ring.readAll(seq)).rejects.toMatchObject({ code: 'RING_IO' });
    // A reader that stops after the first chunk leaves reads behind, one of which fails: it
    // ends quietly (an unhandled rejection would fail this run).
    dev.reads = 0;
    dev.failFrom = 5;
    let got = 0;
    for await (const chunk of ring.read(seq)) {
      got = chunk.length;
      break;
    }
    expect(got).toBe(MiB);
    await expect(ring.readAll(seq)).rejects.toMatchObject({ code: 'RING_IO' });
  });
});
