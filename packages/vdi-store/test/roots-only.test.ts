// Ring.open({ rootsOnly }): a read-only open that reads the two root copies and nothing else
// (the remote device's `list`), and so does not recover a record committed beyond the root.
import { expect, it } from 'vitest';
import { type BlockDevice, MemoryDevice, Ring } from '../src/index.js';
import { label, payload, SR, VDI } from './helpers.js';

const ROOTS = 2 * 128 * 1024;

function recording(dev: BlockDevice): BlockDevice & { furthest: number } {
  const r = {
    furthest: 0,
    size: dev.size,
    readOnly: true,
    async read(offset: number, length: number) {
      r.furthest = Math.max(r.furthest, offset + length);
      return dev.read(offset, length);
    },
    write: () => Promise.reject(new Error('read-only')),
    flush: async () => {},
    close: () => dev.close(),
  };
  return r;
}

it('reads only the roots, and lists what the root lists', async () => {
  const dev = new MemoryDevice(16 * 1024 * 1024);
  const ring = await Ring.format(dev, { vdiUuid: VDI, srUuid: SR });
  await ring.append({ label: label('a'), data: payload(1, 2_000_000) });
  // A second record whose root commit never happened (the crash between the two flushes).
  dev.crashAfter(5);
  await expect(ring.append({ label: label('b'), data: payload(2, 1000) })).rejects.toThrow();
  const img = dev.snapshot();

  const rec = recording(new MemoryDevice(img, true));
  const listed = await Ring.open(rec, { readOnly: true, rootsOnly: true });
  expect(listed.list().map((r) => r.seq)).toEqual([1]);
  expect(rec.furthest).toBeLessThanOrEqual(ROOTS);

  // A full open recovers the committed record from its header.
  const full = await Ring.open(new MemoryDevice(img, true), { readOnly: true });
  expect(full.list().map((r) => r.seq)).toEqual([2, 1]);
  await expect(Ring.open(new MemoryDevice(img), { rootsOnly: true })).rejects.toMatchObject({
    code: 'RING_INVALID_ARGUMENT',
  });
});
