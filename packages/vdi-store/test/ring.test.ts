import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MemoryDevice, RING_FORMAT_VERSION, Ring, RingError } from '../src/index.js';
import { DATA_START } from '../src/ring/layout.js';
import { contents, freshRing, label, payload, SR, sha, VDI } from './helpers.js';

const MiB = 1024 * 1024;

describe('Ring', () => {
  it('appends, lists newest first and reads back what was written', async () => {
    const { dev, ring } = await freshRing(4 * MiB);
    for (let i = 1; i <= 3; i++) {
      await ring.append({
        label: label(`backup ${i}`),
        data: payload(i, 1000 * i),
        createdAt: 1000 + i,
      });
    }
    const reopened = await Ring.open(dev);
    expect(
      reopened.list().map((r) => [r.seq, r.size, r.createdAt, new TextDecoder().decode(r.label)]),
    ).toEqual([
      [3, 3000, 1003, 'backup 3'],
      [2, 2000, 1002, 'backup 2'],
      [1, 1000, 1001, 'backup 1'],
    ]);
    expect(sha(await reopened.readAll(2))).toBe(sha(payload(2, 2000)));
    expect(reopened.vdiUuid).toBe(VDI);
    expect(reopened.srUuid).toBe(SR);
  });

  it('27 appends keep the newest 25, across wrap-around', async () => {
    const { dev, ring } = await freshRing(DATA_START + 60 * 4096);
    for (let i = 1; i <= 27; i++)
      await ring.append({ label: label(`${i}`), data: payload(i, 5000 + i) });
    const reopened = await Ring.open(dev);
    const seqs = reopened.list().map((r) => r.seq);
    expect(seqs).toEqual(Array.from({ length: 25 }, (_, i) => 27 - i));
    expect((await reopened.verify()).ok).toBe(true);
    for (const s of [3, 15, 27])
      expect(sha(await reopened.readAll(s))).toBe(sha(payload(s, 5000 + s)));
  });

  it('honours keep per append', async () => {
    const { ring } = await freshRing(2 * MiB);
    for (let i = 1; i <= 6; i++)
      await ring.append({ label: label(''), data: payload(i, 100), keep: 2 });
    expect(ring.list().map((r) => r.seq)).toEqual([6, 5]);
  });

  it('a record too large fails with RING_FULL and leaves the disk byte for byte unchanged', async () => {
    const { dev, ring } = await freshRing(DATA_START + 20 * 4096);
    await ring.append({ label: label('a'), data: payload(1, 30_000) });
    await ring.append({ label: label('b'), data: payload(2, 30_000) });
    const before = sha(dev.snapshot());
    const err = await ring.append({ label: label('c'), data: payload(3, 70_000) }).catch((e) => e);
    expect(err).toBeInstanceOf(RingError);
    expect(err.code).toBe('RING_FULL');
    expect(err.message).toMatch(/needs \d+ bytes .* room for \d+ bytes/);
    expect(sha(dev.snapshot())).toBe(before);
    expect(dev.unflushed).toBe(0);
  });

  it('evicts the oldest record to make room when only the newest keep-1 must stay', async () => {
    const { dev, ring } = await freshRing(DATA_START + 20 * 4096, 2);
    await ring.append({ label: label('a'), data: payload(1, 35_000) });
    await ring.append({ label: label('b'), data: payload(2, 35_000) });
    await ring.append({ label: label('c'), data: payload(3, 35_000) });
    const r = await Ring.open(dev);
    expect(await contents(r)).toEqual([
      `3:${sha(payload(3, 35_000))}`,
      `2:${sha(payload(2, 35_000))}`,
    ]);
  });

  it('evicts by creation time, not by append order: an old record appended late goes first', async () => {
    const { dev, ring } = await freshRing(4 * MiB, 4);
    // Two recent backups, then two old ones appended later (converted from a legacy disk).
    for (const [i, at] of [
      [1, 5000],
      [2, 6000],
      [3, 1000],
      [4, 2000],
    ] as const)
      await ring.append({ label: label(`r${i}`), data: payload(i, 100), createdAt: at });
    await ring.append({ label: label('r5'), data: payload(5, 100), createdAt: 7000 });
    await ring.append({ label: label('r6'), data: payload(6, 100), createdAt: 8000, keep: 3 });
    const r = await Ring.open(dev);
    expect(r.list().map((x) => [x.seq, x.createdAt])).toEqual([
      [6, 8000],
      [5, 7000],
      [2, 6000],
    ]);
    expect(await contents(r)).toHaveLength(3);
  });

  it('refuses an unformatted disk, a foreign identity and writes in read-only mode', async () => {
    await expect(Ring.open(new MemoryDevice(2 * MiB))).rejects.toMatchObject({
      code: 'RING_NOT_FORMATTED',
    });
    await expect(Ring.open(new MemoryDevice(100))).rejects.toBeInstanceOf(RingError);
    const { dev } = await freshRing(2 * MiB);
    await expect(Ring.open(dev, { expect: { srUuid: VDI } })).rejects.toMatchObject({
      code: 'RING_IDENTITY_MISMATCH',
    });
    const ro = await Ring.open(dev, { readOnly: true });
    await expect(ro.append({ label: label(''), data: payload(1, 10) })).rejects.toMatchObject({
      code: 'RING_READ_ONLY',
    });
    await expect(ro.readAll(99)).rejects.toMatchObject({ code: 'RING_NOT_FOUND' });
  });

  it('refuses a newer incompatible format, naming both versions', async () => {
    const { dev } = await freshRing(2 * MiB);
    const img = dev.snapshot();
    for (const base of [0, 128 * 1024]) {
      const v = new DataView(img.buffer);
      v.setUint16(base + 10, RING_FORMAT_VERSION + 1, true);
      // A real newer root: its checksum holds (a flipped version byte alone is damage).
      const end = base + 256 + v.getUint16(base + 14, true) * 560;
      v.setUint32(
        base + 248,
        crc32(img.subarray(base + 252, end), crc32(img.subarray(base, base + 248))),
        true,
      );
    }
    const err = await Ring.open(new MemoryDevice(img)).catch((e) => e);
    expect(err.code).toBe('RING_VERSION_UNSUPPORTED');
    expect(err.message).toContain(`version ${RING_FORMAT_VERSION + 1}`);
    expect(err.message).toContain(`format version ${RING_FORMAT_VERSION}`);
  });

  it('reports usage with one mark per kept record', async () => {
    const { ring } = await freshRing(2 * MiB);
    await ring.append({ label: label(''), data: payload(1, 5000) });
    await ring.append({ label: label(''), data: payload(2, 100) });
    const u = ring.usage();
    expect(u.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(u.used).toBe(8192 + 4096);
    expect(u.free).toBe(u.capacity - u.used);
  });

  it('listing reads the roots and one small header per possible place of a newer record', async () => {
    const { dev, ring } = await freshRing(8 * MiB);
    for (let i = 1; i <= 25; i++)
      await ring.append({ label: label(`${i}`), data: payload(i, 100_000) });
    let bytes = 0;
    let reads = 0;
    const counting = new Proxy(dev, {
      get(target, prop, receiver) {
        if (prop === 'read') {
          return (o: number, n: number) => {
            reads++;
            bytes += n;
            return target.read(o, n);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    });
    const r = await Ring.open(counting);
    expect(r.list()).toHaveLength(25);
    // Two root copies, then at most one 64-byte header per listed record's start and end, and
    // the start of the data area (looking for committed records beyond the root).
    expect(reads).toBeLessThanOrEqual(2 + 2 * 25 + 1);
    expect(bytes).toBeLessThanOrEqual(2 * (256 + 128 * 560) + 64 * (2 * 25 + 1));
    expect(r.status.ok).toBe(true);
  });
});
