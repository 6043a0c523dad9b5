import { describe, expect, it } from 'vitest';
import {
  type ArchiveLimits,
  RECORD_LIMITS,
  readArchive,
  scanArchive,
  writeArchive,
} from '../src/index.js';
import { freshRing, label, payload } from './helpers.js';

const NO_LIMITS: ArchiveLimits = {
  maxParts: Number.POSITIVE_INFINITY,
  maxPartBytes: Number.POSITIVE_INFINITY,
  maxTotalBytes: Number.POSITIVE_INFINITY,
  maxExpansionRatio: Number.POSITIVE_INFINITY,
  expansionSlackBytes: 0,
};

async function drain(it: AsyncIterable<unknown>): Promise<number> {
  let n = 0;
  for await (const _ of it) n++;
  return n;
}

/** A forged archive: `bytes` of zeros in one part, a few hundred KiB once compressed. */
async function bomb(bytes: number) {
  const zero = new Uint8Array(4 * 1024 * 1024);
  return writeArchive(
    [
      {
        name: 'vms/x.ova.tar',
        data: (function* () {
          for (let n = 0; n < bytes; n += zero.length) yield zero;
        })(),
      },
    ],
    { limits: NO_LIMITS },
  );
}

describe('one set of record limits for the writer, verify and the reader', () => {
  it('the writer refuses what the reader would refuse, before producing anything', async () => {
    const small: Partial<ArchiveLimits> = { maxParts: 3, maxPartBytes: 1000, maxTotalBytes: 5000 };
    const parts = (n: number, size: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `p${i}`, data: payload(i + 1, size) }));
    for (const [what, input] of [
      ['parts', parts(4, 10)],
      ['part size', parts(1, 1001)],
      ['total', parts(3, 999).concat([])],
    ] as const) {
      const lim = what === 'total' ? { ...small, maxTotalBytes: 2000 } : small;
      const err = await writeArchive(input, { limits: lim }).catch((e) => e);
      expect(err, what).toMatchObject({ code: 'ARCHIVE_LIMIT' });
      expect(err.message).toMatch(/no reader would restore it, so it is not written/);
      // And what the writer accepts under those limits, the reader accepts under the same.
      const ok = await writeArchive(parts(3, 500), { limits: { ...small, maxTotalBytes: 5000 } });
      expect(await drain(readArchive(ok.bytes, { ...small, maxTotalBytes: 5000 }))).toBe(3);
    }
    // Expansion: zeros compress far beyond the ratio.
    const err = await writeArchive([{ name: 'z', data: new Uint8Array(1_000_000) }], {
      limits: { maxExpansionRatio: 10, expansionSlackBytes: 1000 },
    }).catch((e) => e);
    expect(err).toMatchObject({ code: 'ARCHIVE_LIMIT' });
    expect(err.message).toMatch(/expand to \d+, more than 10×/);
    // The defaults are the same object everywhere.
    expect(RECORD_LIMITS.maxExpansionRatio).toBe(1000);
  });

  it('a forged bomb fails the reader and scan at the expansion bound, in bounded memory', async () => {
    // Many 100 MB parts of zeros: no part is over the part limit, the whole expands 1500×.
    const zero = new Uint8Array(4 * 1024 * 1024);
    const b = await writeArchive(
      Array.from({ length: 6 }, (_, i) => ({
        name: `vms/${i}.ova.tar`,
        data: (function* () {
          for (let n = 0; n < 100e6; n += zero.length) yield zero;
        })(),
      })),
      { limits: NO_LIMITS },
    );
    expect(b.storedBytes).toBeLessThan(400_000);
    const bound =
      b.storedBytes * RECORD_LIMITS.maxExpansionRatio + RECORD_LIMITS.expansionSlackBytes;
    expect(bound).toBeLessThan(b.rawBytes);
    const before = process.memoryUsage().rss;
    for (const read of [scanArchive, readArchive]) {
      const err = await drain(read(b.bytes)).catch((e) => e);
      expect(err).toMatchObject({ code: 'ARCHIVE_LIMIT' });
      expect(err.message).toContain(`archive expands past ${bound} bytes (more than 1000×`);
    }
    // scan keeps no part; read keeps one part at a time: both far below the 600 MB.
    expect(process.memoryUsage().rss - before).toBeLessThan(400e6);
  });

  it('ring.verify fails a record whose check (decoding every part) fails, and passes good ones', async () => {
    const { ring } = await freshRing(4 * 1024 * 1024);
    const good = await writeArchive([{ name: 'a', data: payload(1, 50_000) }]);
    const forged = await bomb(300e6); // over the part limit: the reader refuses it
    await ring.append({ label: label('good'), data: good.bytes });
    await ring.append({ label: label('bomb'), data: forged.bytes });
    expect((await ring.verify()).ok).toBe(true); // checksums alone: the bomb is "intact"
    const rep = await ring.verify(undefined, async (bytes) => {
      await drain(scanArchive(bytes));
    });
    expect(rep.ok).toBe(false);
    expect(rep.records).toMatchObject([
      { seq: 2, ok: false, code: 'ARCHIVE_LIMIT' },
      { seq: 1, ok: true },
    ]);
  });
});
