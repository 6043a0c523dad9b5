import { expect, it } from 'vitest';
import { type BlockDevice, MemoryDevice, Ring } from '../src/index.js';
import { BLOCK, DATA_START } from '../src/ring/layout.js';
import { label, payload, SR, VDI } from './helpers.js';

/**
 * A reader (verify) and a writer (backups that evict) share one disk. The interleaving is made
 * explicit, not timed: before each record header the reader reads, and before each payload
 * chunk, the writer appends one backup, which evicts the oldest and writes over its space.
 */
it('verify concurrent with evicting appends never reports false damage', async () => {
  for (const when of ['header', 'payload'] as const) {
    const base = new MemoryDevice(DATA_START + 16 * BLOCK);
    const writer = await Ring.format(base, { vdiUuid: VDI, srUuid: SR, maxRecords: 4 });
    let n = 0;
    const backup = () =>
      writer.append({ label: label(`b${++n}`), data: payload(n, 16_000), createdAt: n });
    for (let i = 0; i < 4; i++) await backup();
    let appends = 0;
    let armed = false;
    const reader: BlockDevice = {
      size: base.size,
      readOnly: true,
      async read(offset, length) {
        const isHeader = offset >= DATA_START && length === 64;
        const isPayload = offset >= DATA_START && length > 64;
        if (armed && ((when === 'header' && isHeader) || (when === 'payload' && isPayload))) {
          appends++;
          await backup();
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
