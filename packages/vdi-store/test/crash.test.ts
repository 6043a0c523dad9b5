import { expect, it } from 'vitest';
import { MemoryDevice, Ring, type SectorFate, SimulatedCrash } from '../src/index.js';
import { DATA_START, ROOT_SIZE } from '../src/ring/layout.js';
import { contents, label, payload, SR, VDI } from './helpers.js';

/**
 * SQLite/CrashMonkey-style crash test: for a sequence of appends that fills and wraps a small
 * ring, crash at every persistence point (each write and flush) of each append, and for the
 * unflushed writes at that point try several fates (all applied, all dropped, all garbled, each
 * write alone applied, each write torn sector by sector). After reopening, the visible records
 * must be exactly the old set or the new set (or the old set plus the new record, recovered
 * from its header), each record complete. Each crash state is also opened with one root copy
 * damaged: detected, nothing lost (one of those sets is there whole), nothing made up.
 */
it('every crash point of every append leaves the old set or the new set', async () => {
  const size = DATA_START + 40 * 4096;
  const sizes = [9000, 20000, 3000, 30000, 12000, 25000, 7000, 40000, 1000, 16000, 33000];
  const base = new MemoryDevice(size);
  let ring = await Ring.format(base, { vdiUuid: VDI, srUuid: SR, maxRecords: 4 });
  let states = 0;
  let damaged = 0;
  /** Every complete record the ring has listed so far. */
  const ever = new Set<string>();
  for (let i = 0; i < sizes.length; i++) {
    const input = { label: label(`r${i}`), data: payload(i + 1, sizes[i]!), createdAt: 1000 + i };
    const before = await contents(ring);
    const image = base.snapshot();
    // The reference run, without a crash.
    const ref = new MemoryDevice(image.slice());
    const refRing = await Ring.open(ref);
    const evictFirst = { kept: [] as string[] };
    const opsBefore = ref.ops;
    await refRing.append(input);
    const after = await contents(refRing);
    const ops = ref.ops - opsBefore;
    evictFirst.kept = after.slice(1);
    // Allowed visible sets: before, after, and, only when the append had to reuse the space of
    // a record it evicts (FORMAT.md, "Eviction"), the kept records alone.
    // Also old+new: a crash after the record is durable but before its root is, then recovered
    // from the record's own header (FORMAT.md, "Recovery").
    const allowed = new Set([
      before.join(','),
      after.join(','),
      evictFirst.kept.join(','),
      [after[0], ...before].join(','),
    ]);
    for (let k = 1; k <= ops; k++) {
      const dev = new MemoryDevice(image.slice());
      const r = await Ring.open(dev);
      dev.crashAfter(k);
      await expect(r.append(input)).rejects.toBeInstanceOf(SimulatedCrash);
      const n = dev.unflushed;
      const fates: ((w: number, s: number) => SectorFate)[] = [
        () => 'apply',
        () => 'drop',
        () => 'garble',
        (_w, s) => (s % 2 === 0 ? 'apply' : 'drop'),
        (_w, s) => (s < 3 ? 'apply' : 'garble'),
      ];
      for (let w = 0; w < n; w++) {
        fates.push((x) => (x === w ? 'apply' : 'drop'));
        fates.push((x, s) => (x === w ? (s === 0 ? 'apply' : 'drop') : 'apply'));
      }
      for (const fate of fates) {
        const img = dev.afterCrash(fate);
        const crashed = new MemoryDevice(img.slice());
        const reopened = await Ring.open(crashed);
        const seen = (await contents(reopened)).join(',');
        if (!allowed.has(seen)) {
          throw new Error(
            `append ${i}, crash at op ${k}: visible ${seen}; expected ${[...allowed].join(' | ')}`,
          );
        }
        states++;
        // The same crash state with a bit flipped in one root copy (its generation): detected,
        // and the old set or the new one (or old+new) whole, never less.
        for (const copy of [0, ROOT_SIZE]) {
          const bad = img.slice();
          bad[copy + 17]! ^= 0x04;
          const r = await Ring.open(new MemoryDevice(bad), { readOnly: true });
          expect(r.status.ok).toBe(false);
          const got = await contents(r);
          // Nothing lost: it holds one of the allowed sets whole. Nothing made up: every record
          // shown was once a complete backup (the older copy's set may still list a record the
          // lost root's append evicted: it reappears, intact, until the next append).
          const holdsAllowed = [...allowed].some((a) =>
            a.split(',').every((x) => x === '' || got.includes(x)),
          );
          if (!holdsAllowed || got.some((x) => !ever.has(x) && !after.includes(x))) {
            throw new Error(
              `append ${i}, crash at op ${k}, root copy ${copy ? 1 : 0} flipped: visible ${got.join(',')}; expected ${[...allowed].join(' | ')}`,
            );
          }
          damaged++;
        }
      }
    }
    await ring.append(input);
    ring = await Ring.open(base);
    expect(await contents(ring)).toEqual(after);
    for (const x of after) ever.add(x);
  }
  console.log(`crash test: checked ${states} crash states, ${damaged} of them with a damaged root`);
  expect(states).toBeGreaterThan(300);
  expect(damaged).toBe(2 * states);
});

/**
 * Root damage on top of the crash model: after each append of a wrapping ring, flip bits all
 * over the header and entries of each root copy. Every flip is detected (status not ok), and the
 * records seen are the old set plus the new one (recovered from its header), never fewer.
 */
it('every flipped root bit after every append is detected, and nothing is lost', async () => {
  const size = DATA_START + 40 * 4096;
  const sizes = [9000, 20000, 3000, 30000, 12000, 25000, 7000, 40000];
  const base = new MemoryDevice(size);
  const ring = await Ring.format(base, { vdiUuid: VDI, srUuid: SR, maxRecords: 4 });
  let flips = 0;
  for (let i = 0; i < sizes.length; i++) {
    const before = await contents(
      await Ring.open(new MemoryDevice(base.snapshot()), { readOnly: true }),
    );
    await ring.append({
      label: label(`r${i}`),
      data: payload(i + 1, sizes[i]!),
      createdAt: 1000 + i,
    });
    const image = base.snapshot();
    const after = await contents(
      await Ring.open(new MemoryDevice(image.slice()), { readOnly: true }),
    );
    const allowed = new Set([after.join(','), [after[0], ...before].join(',')]);
    for (const copy of [0, ROOT_SIZE]) {
      // Each copy's own entries (the older copy may list fewer).
      const count = new DataView(image.buffer).getUint16(copy + 14, true);
      for (let pos = 0; pos < 256 + count * 560; pos += 37) {
        const img = image.slice();
        img[copy + pos]! ^= 1 << (pos % 8);
        const r = await Ring.open(new MemoryDevice(img), { readOnly: true });
        expect(r.status.ok, `flip at ${copy + pos}`).toBe(false);
        const seen = (await contents(r)).join(',');
        if (!allowed.has(seen))
          throw new Error(`append ${i}, flip at ${copy + pos}: visible ${seen}`);
        // A writable open writes the recovered root back; the next open is clean.
        const dev = new MemoryDevice(img);
        await Ring.open(dev);
        const healed = await Ring.open(new MemoryDevice(dev.snapshot()), { readOnly: true });
        expect(healed.status.warnings).toEqual([]);
        expect((await contents(healed)).join(',')).toBe(seen);
        flips++;
      }
    }
  }
  console.log(`root damage: ${flips} flips, each detected and recovered`);
  expect(flips).toBeGreaterThan(300);
});
