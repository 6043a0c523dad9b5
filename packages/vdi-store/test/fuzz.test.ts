import fc from 'fast-check';
import { expect, it } from 'vitest';
import { MemoryDevice, Ring, RingError, readArchive, writeArchive } from '../src/index.js';
import { ROOT_SIZE } from '../src/ring/layout.js';
import { freshRing, label, payload } from './helpers.js';

/** Any bytes open (and verify) or fail with a typed error, quickly. */
async function openAnything(img: Uint8Array): Promise<void> {
  const t0 = Date.now();
  try {
    const r = await Ring.open(new MemoryDevice(img));
    await r.verify();
    for (const rec of r.list())
      await r.readAll(rec.seq).catch((e) => expect(e).toBeInstanceOf(RingError));
  } catch (e) {
    expect(e).toBeInstanceOf(RingError);
  }
  // Generous, for a busy machine: what it guards against is a loop that never ends.
  expect(Date.now() - t0).toBeLessThan(20_000);
}

it('random devices open or fail typed', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 0, maxLength: 4096 }),
      fc.nat(600_000),
      async (head, size) => {
        const img = new Uint8Array(size);
        img.set(head.subarray(0, size));
        await openAnything(img);
      },
    ),
    { numRuns: 200 },
  );
});

it('mutated valid rings open or fail typed, and never trust a length from disk', async () => {
  const { dev, ring } = await freshRing(ROOT_SIZE * 2 + 64 * 4096);
  for (let i = 1; i <= 5; i++)
    await ring.append({ label: label(`${i}`), data: payload(i, 20_000) });
  const image = dev.snapshot();
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.nat(ROOT_SIZE * 2 + 64 * 4096 - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 20,
      }),
      async (edits) => {
        const img = image.slice();
        for (const [pos, val] of edits) img[pos] = val;
        await openAnything(img);
      },
    ),
    { numRuns: 300 },
  );
});

it('hostile archives fail typed and bounded', async () => {
  const good = await writeArchive([
    { name: 'a', data: payload(1, 50_000) },
    { name: 'b', data: payload(2, 10) },
  ]);
  await fc.assert(
    fc.asyncProperty(
      fc.nat(good.bytes.length - 1),
      fc.integer({ min: 1, max: 255 }),
      async (pos, x) => {
        const bad = good.bytes.slice();
        bad[pos]! ^= x;
        try {
          for await (const _ of readArchive(bad)) {
            // consume
          }
          // A flip that still decodes must not change content (checked by sha256 inside).
        } catch (e) {
          expect((e as Error).name).toBe('ArchiveError');
        }
      },
    ),
    { numRuns: 200 },
  );
});
