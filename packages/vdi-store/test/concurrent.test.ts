import { expect, it } from 'vitest';
import { type BlockDevice, MemoryDevice, Ring } from '../src/index.js';
import { BLOCK, DATA_START } from '../src/ring/layout.js';
import { label, payload, SR, VDI } from './helpers.js';

const MiB = 1024 * 1024;

/**
 * A reader (verify) and a writer (backups that evict) share one disk. The interleaving is made
 * explicit, not timed: before each read that begins a record (its header), or before each read
 * inside one (records of 2.5 MiB take several reads), the writer appends one backup, which
 * evicts the oldest and writes over its space (the disk holds four records, no more). Verify
 * keeps several reads in flight; the backups run one at a time, as the SR lock keeps them.
 */
it('verify concurrent with evicting appends never reports false damage', async () => {
  const size = 2.5 * MiB;
  const slot = Math.ceil((64 + size + 2) / BLOCK) * BLOCK;
  for (const when of ['header', 'payload'] as const) {
    const base = new MemoryDevice(DATA_START + 4 * slot);
    const writer = await Ring.format(base, { vdiUuid: VDI, srUuid: SR, maxRecords: 4 });
    let n = 0;
    const backup = () =>
      writer.append({ label: label(`b${++n}`), data: payload(n, size), createdAt: n });
    for (let i = 0; i < 4; i++) await backup();
    let appends = 0;
    let armed = false;
    let writing: Promise<unknown> = Promise.resolve();
    const reader: BlockDevice = {
      size: base.size,
      readOnly: true,
      async read(offset, length) {
        const starts = (offset - DATA_START) % slot === 0;
        if (armed && offset >= DATA_START && starts === (when === 'header')) {
          appends++;
          writing = writing.then(backup);
          await writing;
        }
        return base.read(offset, length);
      },
      write: () => Promise.reject(new Error('read-only')),
      flush: async () => {},
      close: async () => {},
    };
    const live = await Ring.open(reader, { readOnly: true });
    expect(live.list()).toHaveLength(4);
    armed = true;
    const rep = await live.verify();
    expect(appends).toBeGreaterThan(0);
    expect(rep.records.filter((r) => !r.ok)).toEqual([]);
    expect(rep.ok).toBe(true);
    // Records overwritten meanwhile are named as evicted, the others read clean.
    expect(rep.records.some((r) => r.code === 'RING_EVICTED')).toBe(true);
  }
});
