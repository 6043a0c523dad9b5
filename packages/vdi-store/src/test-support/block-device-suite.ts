/**
 * The behaviour every `BlockDevice` promises, as one suite that each implementation runs (as
 * abstract-level ships its suite for stores): vdi-store's memory and file devices, and
 * legacy-compat's read-only image device. A device declares what it can do (`writable`), and
 * the suite skips what it cannot, as abstract-level's suite switches on declared features. A
 * device whose size is a whole number of sectors (the remote device: a VDI's virtual size is a
 * multiple of 512) declares `sectorSize`, and every case runs on an image rounded up to it.
 * Not part of the package's API: not built, exported only under the `source` condition.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rejection } from '../../../../test-support/reject.js';

/** The reading half every device has (legacy-compat's read-only device has only this). */
export interface ReadableDevice {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Optional: reads into a given buffer, exactly as `read` reads. */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  /** Optional: reads past the page cache, exactly as `read` reads. */
  readUncached?(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** A writable device: the whole `BlockDevice` port. */
interface WritableDevice extends ReadableDevice {
  readonly readOnly: boolean;
  write(offset: number, data: Uint8Array): Promise<void>;
  flush(): Promise<void>;
}

export interface BlockDeviceCapabilities {
  /** write() and flush() exist and work on a device opened for writing. */
  readonly writable: boolean;
  /** The error `code` of a read outside the device (vdi-store: RING_TRUNCATED). */
  readonly outOfRangeCode: string;
  /**
   * The device's size is always a multiple of this: the image is rounded up to it (filled with
   * the same varied content). Without it the image has an odd size, to catch block rounding.
   */
  readonly sectorSize?: number;
}

/** How the suite gets a device over given bytes, and looks at the bytes underneath. */
export interface BlockDeviceFactory<D extends ReadableDevice> {
  /** A device over a copy of `image`, opened for writing when `readOnly` is false. */
  open(image: Uint8Array, opts: { readOnly: boolean }): Promise<D>;
  /** The bytes under `dev` as they are now (what a reboot would see after a flush). */
  bytes(dev: D): Promise<Uint8Array>;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * 64 KiB + 3 bytes of varied content (an odd size catches block rounding), rounded up to a
 * whole number of sectors for a device that has them.
 */
function image(sectorSize = 1): Uint8Array {
  const out = new Uint8Array(Math.ceil((64 * 1024 + 3) / sectorSize) * sectorSize);
  let x = 12345;
  for (let i = 0; i < out.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const failure = (p: Promise<unknown>) => rejection<{ code?: string }>(p);

export function blockDeviceSuite<D extends ReadableDevice>(
  name: string,
  caps: BlockDeviceCapabilities,
  factory: BlockDeviceFactory<D>,
): void {
  describe(`BlockDevice behaviour: ${name}`, () => {
    it('has the size of its bytes and reads exactly what they hold, anywhere', async () => {
      const img = image(caps.sectorSize);
      const dev = await factory.open(img, { readOnly: true });
      try {
        expect(dev.size).toBe(img.length);
        for (const [offset, length] of [
          [0, 1],
          [0, 4096],
          [511, 1025],
          [img.length - 3, 3],
          [img.length, 0],
          [0, img.length],
        ] as const) {
          const got = await dev.read(offset, length);
          expect(got.length).toBe(length);
          expect(sha(got)).toBe(sha(img.subarray(offset, offset + length)));
        }
      } finally {
        await dev.close?.();
      }
    });

    it('refuses a read past the end, typed, and stays usable', async () => {
      const img = image(caps.sectorSize);
      const dev = await factory.open(img, { readOnly: true });
      try {
        expect((await failure(dev.read(img.length - 2, 3))).code).toBe(caps.outOfRangeCode);
        expect((await failure(dev.read(img.length + 10, 1))).code).toBe(caps.outOfRangeCode);
        expect(sha(await dev.read(0, 10))).toBe(sha(img.subarray(0, 10)));
      } finally {
        await dev.close?.();
      }
    });

    it('answers many reads at once, each with its own bytes', async () => {
      const img = image(caps.sectorSize);
      const dev = await factory.open(img, { readOnly: true });
      try {
        const ranges = Array.from({ length: 64 }, (_, i) => [(i * 997) % 60_000, 1 + i * 61]);
        const got = await Promise.all(ranges.map(([o, l]) => dev.read(o!, l!)));
        got.forEach((b, i) => {
          const [o, l] = ranges[i]!;
          expect(sha(b)).toBe(sha(img.subarray(o!, o! + l!)));
        });
      } finally {
        await dev.close?.();
      }
    });

    it('reads past the cache what read returns, when it can (readUncached)', async (ctx) => {
      const img = image(caps.sectorSize);
      const dev = await factory.open(img, { readOnly: true });
      try {
        if (!dev.readUncached) return ctx.skip();
        const last = img.length - (img.length % 4096 || 4096);
        for (const [offset, length] of [
          [0, 64],
          [4096, 4096],
          [4100, 64],
          [4090, 12],
          [last, img.length - last],
          [img.length - 3, 3],
          [img.length, 0],
          [0, img.length],
        ] as const) {
          const got = await dev.readUncached(offset, length);
          expect(got.length).toBe(length);
          expect(sha(got)).toBe(sha(img.subarray(offset, offset + length)));
        }
        const ranges = Array.from({ length: 40 }, (_, i) => (i % 15) * 4096 + i);
        const uncached = dev.readUncached.bind(dev);
        const many = await Promise.all(ranges.map((o) => uncached(o, 64)));
        many.forEach((b, i) => {
          expect(sha(b)).toBe(sha(img.subarray(ranges[i]!, ranges[i]! + 64)));
        });
        expect((await failure(dev.readUncached(img.length - 2, 3))).code).toBe(caps.outOfRangeCode);
      } finally {
        await dev.close?.();
      }
    });

    it('reads into a given buffer what read returns, when it can (readInto)', async (ctx) => {
      const img = image(caps.sectorSize);
      const dev = await factory.open(img, { readOnly: true });
      try {
        if (!dev.readInto) return ctx.skip();
        const buf = new Uint8Array(8192).fill(0xee);
        for (const [offset, length] of [
          [0, 4096],
          [511, 1025],
          [img.length - 3, 3],
          [img.length, 0],
        ] as const) {
          await dev.readInto(offset, buf.subarray(0, length));
          expect(sha(buf.subarray(0, length))).toBe(sha(img.subarray(offset, offset + length)));
        }
        const past = failure(dev.readInto(img.length - 2, buf.subarray(0, 3)));
        expect((await past).code).toBe(caps.outOfRangeCode);
      } finally {
        await dev.close?.();
      }
    });

    it('hands out copies: changing what a read returned changes nothing underneath', async () => {
      const img = image(caps.sectorSize);
      const dev = await factory.open(img, { readOnly: true });
      try {
        const a = await dev.read(100, 50);
        a.fill(0);
        expect(sha(await dev.read(100, 50))).toBe(sha(img.subarray(100, 150)));
        expect(sha(await factory.bytes(dev))).toBe(sha(img));
      } finally {
        await dev.close?.();
      }
    });

    it.skipIf(!caps.writable)(
      'opened read-only: refuses writes and never changes a byte',
      async () => {
        const img = image(caps.sectorSize);
        const dev = (await factory.open(img, { readOnly: true })) as unknown as WritableDevice;
        try {
          expect(dev.readOnly).toBe(true);
          expect((await failure(dev.write(0, new Uint8Array([1, 2, 3])))).code).toBe(
            'RING_READ_ONLY',
          );
          await dev.flush();
          expect(sha(await factory.bytes(dev as unknown as D))).toBe(sha(img));
        } finally {
          await dev.close?.();
        }
      },
    );

    it.skipIf(!caps.writable)(
      'writes land where asked, are read back, and last after flush',
      async () => {
        const img = image(caps.sectorSize);
        const dev = (await factory.open(img, { readOnly: false })) as unknown as WritableDevice;
        try {
          expect(dev.readOnly).toBe(false);
          const data = new Uint8Array(5000).fill(0xa5);
          await dev.write(4093, data);
          expect(sha(await dev.read(4093, 5000))).toBe(sha(data));
          // Neighbours untouched.
          expect(sha(await dev.read(0, 4093))).toBe(sha(img.subarray(0, 4093)));
          expect(sha(await dev.read(9093, 100))).toBe(sha(img.subarray(9093, 9193)));
          // The caller may reuse its buffer once write() resolved.
          data.fill(0);
          expect((await dev.read(4093, 1))[0]).toBe(0xa5);
          await dev.flush();
          const want = img.slice();
          want.fill(0xa5, 4093, 9093);
          expect(sha(await factory.bytes(dev as unknown as D))).toBe(sha(want));
        } finally {
          await dev.close?.();
        }
      },
    );

    it.skipIf(!caps.writable)(
      'refuses a write past the end without writing any of it',
      async () => {
        const img = image(caps.sectorSize);
        const dev = (await factory.open(img, { readOnly: false })) as unknown as WritableDevice;
        try {
          const code = (await failure(dev.write(img.length - 2, new Uint8Array(3).fill(7)))).code;
          expect(code).toBe(caps.outOfRangeCode);
          await dev.flush();
          expect(sha(await factory.bytes(dev as unknown as D))).toBe(sha(img));
        } finally {
          await dev.close?.();
        }
      },
    );
  });
}
