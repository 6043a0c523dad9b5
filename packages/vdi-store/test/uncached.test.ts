// Uncached reads (src/uncached.ts): opening a ring reads the record headers it looks at beyond
// the root past the page cache, so that a front-to-back read after it (verify) keeps the
// kernel's read-ahead; a file device's uncached reads give exactly the bytes of its cached ones.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';
import { type BlockDevice, MemoryDevice, openFileDevice, Ring } from '../src/index.js';
import { label, payload, SR, VDI } from './helpers.js';

const DATA_START = 2 * 128 * 1024;
const dir = await mkdtemp(join(tmpdir(), 'vdi-store-uncached-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

// The offsets of a file's pages in the page cache (mincore over a mapping that is never
// touched); with `drop`, after asking the kernel to drop the file's clean pages first.
const RESIDENT = `
import ctypes, json, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
if sys.argv[2] == 'drop':
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
page = os.sysconf('SC_PAGE_SIZE')
addr = libc.mmap(None, size, 1, 1, fd, 0)
n = (size + page - 1) // page
vec = (ctypes.c_ubyte * n)()
if libc.mincore(addr, size, vec) != 0:
    raise OSError(ctypes.get_errno(), 'mincore')
libc.munmap(addr, size)
print(json.dumps([i * page for i in range(n) if vec[i] & 1]))
`;
const resident = (path: string, how: 'drop' | 'look'): number[] =>
  JSON.parse(execFileSync('python3', ['-c', RESIDENT, path, how], { encoding: 'utf8' }));

/** A device that records which of its reads went through readUncached, and where. */
function recording(dev: BlockDevice) {
  const cached: [number, number][] = [];
  const uncached: [number, number][] = [];
  const r: BlockDevice = {
    size: dev.size,
    readOnly: true,
    read(offset, length) {
      cached.push([offset, length]);
      return dev.read(offset, length);
    },
    readUncached(offset, length) {
      uncached.push([offset, length]);
      return dev.read(offset, length);
    },
    write: () => Promise.reject(new Error('read-only')),
    flush: async () => {},
    close: () => dev.close(),
  };
  return { dev: r, cached, uncached };
}

it('opening reads the headers it looks at beyond the root uncached, and still recovers', async () => {
  const mem = new MemoryDevice(16 * 1024 * 1024);
  const ring = await Ring.format(mem, { vdiUuid: VDI, srUuid: SR });
  for (const i of [1, 2, 3])
    await ring.append({ label: label(`r${i}`), data: payload(i, 300_000) });
  // The records lie one after the other from the data area's start, each header + payload +
  // label rounded up to a 4 KiB block: the places an open looks at are these and the next.
  const span = Math.ceil((64 + 300_000 + 2) / 4096) * 4096;
  const listed = [0, span, 2 * span];

  const clean = recording(new MemoryDevice(mem.snapshot(), true));
  const opened = await Ring.open(clean.dev, { readOnly: true });
  expect(opened.status.ok).toBe(true);
  // Every listed record's header, and the place after the newest, read past the cache ...
  const peeked = new Set(clean.uncached.map(([o]) => o - DATA_START));
  expect([...peeked].sort((a, b) => a - b)).toEqual([...listed, 3 * span]);
  // ... and nothing of the data area through the cache: the two root copies only.
  expect(clean.cached.every(([o, n]) => o + n <= DATA_START)).toBe(true);
  expect((await opened.verify()).ok).toBe(true);

  // A record committed beyond the root (the crash between the two flushes) is still found: its
  // header through the uncached read, its payload through the cached one.
  mem.crashAfter(5);
  await expect(ring.append({ label: label('r4'), data: payload(4, 1000) })).rejects.toThrow();
  const crashed = recording(new MemoryDevice(mem.snapshot(), true));
  const recovered = await Ring.open(crashed.dev, { readOnly: true });
  expect(recovered.list().map((r) => r.seq)).toEqual([4, 3, 2, 1]);
  expect(recovered.status.ok).toBe(false);
  expect((await recovered.verify()).records.every((r) => r.ok)).toBe(true);
});

it("a file device's uncached reads give the bytes of its cached reads, and refuse the same", async () => {
  const path = join(dir, 'odd.img');
  const size = 3 * 4096 + 100; // the file ends inside a block
  const bytes = randomBytes(size);
  await writeFile(path, bytes);
  for (const readOnly of [true, false]) {
    const dev = await openFileDevice(path, { readOnly });
    try {
      const readUncached = dev.readUncached?.bind(dev);
      expect(readUncached).toBeDefined();
      if (!readUncached) return;
      for (const [o, n] of [
        [0, 64], // a header at a block start
        [4096, 4096], // a whole block
        [4096 + 10, 64], // inside a block
        [4090, 12], // across two blocks (read through the cache)
        [0, 3 * 4096 + 100], // longer than a block (read through the cache)
        [3 * 4096, 100], // the file's last bytes, in a short block
        [3 * 4096 + 40, 60],
        [5, 0],
      ] as const) {
        const got = await readUncached(o, n);
        expect(Buffer.from(got).equals(bytes.subarray(o, o + n))).toBe(true);
        expect(Buffer.from(got).equals(Buffer.from(await dev.read(o, n)))).toBe(true);
      }
      await expect(readUncached(3 * 4096 + 50, 64)).rejects.toMatchObject({
        code: 'RING_TRUNCATED',
      });
      await expect(readUncached(-1, 4)).rejects.toMatchObject({ code: 'RING_INVALID_ARGUMENT' });
      // Many at once: more than the reader's 16 aligned buffers, each with its own bytes.
      const many = await Promise.all(
        Array.from({ length: 40 }, (_, i) => readUncached((i % 3) * 4096 + i, 64)),
      );
      many.forEach((got, i) => {
        const o = (i % 3) * 4096 + i;
        expect(Buffer.from(got).equals(bytes.subarray(o, o + 64))).toBe(true);
      });
    } finally {
      await dev.close();
    }
  }
});

it('opening a ring on a file leaves none of its record headers in the page cache', async (ctx) => {
  requireTools('python3');
  const MiB = 1024 * 1024;
  const path = join(dir, 'cache.img');
  await writeFile(path, '');
  await truncate(path, 40 * MiB);
  const ring = await Ring.format(await openFileDevice(path), { vdiUuid: VDI, srUuid: SR });
  for (const i of [1, 2, 3, 4, 5, 6])
    await ring.append({ label: label(''), data: payload(i, 4 * MiB) });
  await ring.close(); // every append was flushed: the file's pages are clean, and can be dropped
  const span = Math.ceil((64 + 4 * MiB) / 4096) * 4096;
  const places = [0, 1, 2, 3, 4, 5, 6].map((k) => DATA_START + k * span);
  // A filesystem that keeps its pages in memory (tmpfs) cannot tell, and one that refuses
  // O_DIRECT reads through the cache (the device falls back): nothing to see there.
  if (resident(path, 'drop').length > 0) return ctx.skip();
  const direct = await open(path, constants.O_RDONLY | constants.O_DIRECT).catch(() => null);
  if (!direct) return ctx.skip();
  await direct.close();

  const ro = await Ring.open(await openFileDevice(path, { readOnly: true }), { readOnly: true });
  expect(ro.status.ok).toBe(true);
  expect(ro.list()).toHaveLength(6);
  await ro.close();
  // The root copies are read through the cache (and the kernel reads ahead past them, into the
  // first record): the headers from the second record on lie megabytes beyond, and the open
  // looked at each of them and at the place after the last. None of them may be cached.
  const cached = new Set(resident(path, 'look'));
  expect(cached.size).toBeGreaterThan(0); // the roots
  expect(places.slice(1).filter((p) => cached.has(p))).toEqual([]);
});

it('a closed file device reads nothing, uncached or not', async () => {
  const path = join(dir, 'closed.img');
  await writeFile(path, randomBytes(8192));
  const dev = await openFileDevice(path, { readOnly: true });
  expect((await dev.readUncached?.(0, 64))?.length).toBe(64);
  await dev.close();
  await expect(dev.read(0, 64)).rejects.toThrow();
  await expect(dev.readUncached?.(0, 64)).rejects.toThrow();
});
