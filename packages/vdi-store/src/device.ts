import { constants } from 'node:fs';
import { type FileHandle, open, readFile, realpath } from 'node:fs/promises';
import { RingError } from './errors.js';
import { UNCACHED_BLOCK, UncachedReader } from './uncached.js';

/** The block-device port: what the ring needs from a disk. */
export interface BlockDevice {
  /** Size in bytes. */
  readonly size: number;
  readonly readOnly: boolean;
  /** Reads exactly `length` bytes at `offset`; a short read is RING_TRUNCATED. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: reads exactly `target.length` bytes at `offset` into `target`, as `read` does,
   * so that a reader can reuse its buffers (verify reads a whole disk through a few).
   */
  readInto?(offset: number, target: Uint8Array): Promise<void>;
  /**
   * Optional: reads as `read` does, leaving nothing in the page cache where the platform allows
   * it. For the scattered record headers that opening a ring reads: cached, they would slow a
   * later front-to-back read of the disk (`verify`) by restarting the kernel's read-ahead.
   */
  readUncached?(offset: number, length: number): Promise<Uint8Array>;
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Makes every write so far durable (fdatasync). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export function checkRange(dev: { size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RingError('RING_INVALID_ARGUMENT', `bad range offset=${offset} length=${length}`);
  }
  if (offset + length > dev.size) {
    throw new RingError(
      'RING_TRUNCATED',
      `read past the end of the device (${offset + length} > ${dev.size} bytes)`,
    );
  }
}

class FileDevice implements BlockDevice {
  /** Opened at the first uncached read; null where O_DIRECT is not to be had. */
  private uncached: Promise<UncachedReader | null> | undefined;
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly path: string,
    private readonly real: string,
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    // Not zero-filled first: every byte is read into it, or the read fails.
    const buf = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
    await this.readInto(offset, buf);
    return buf;
  }

  async readInto(offset: number, buf: Uint8Array): Promise<void> {
    const length = buf.length;
    checkRange(this, offset, length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) {
        throw new RingError('RING_TRUNCATED', `${this.path}: short read at ${offset + done}`);
      }
      done += bytesRead;
    }
  }

  async readUncached(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const start = offset - (offset % UNCACHED_BLOCK);
    const end = offset + length - start;
    if (end <= UNCACHED_BLOCK && !this.closed) {
      this.uncached ??= UncachedReader.open(this.real);
      const block = await (await this.uncached)?.block(start);
      // A short block (the file ends inside it) falls back, and the cached read says why.
      if (block && block.length >= end) return block.subarray(offset - start, end);
    }
    return this.read(offset, length);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.readOnly) throw new RingError('RING_READ_ONLY', `${this.path} is open read-only`);
    checkRange(this, offset, data.length);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    if (!this.readOnly) await this.fh.datasync();
  }

  async close(): Promise<void> {
    this.closed = true;
    const uncached = this.uncached;
    this.uncached = undefined;
    try {
      await (await uncached)?.close();
    } finally {
      await this.fh.close();
    }
  }
}

async function blockDeviceSize(path: string, rdev: number): Promise<number> {
  // Linux: /sys/dev/block/<major>:<minor>/size holds the size in 512-byte sectors.
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  try {
    const sectors = Number(
      (await readFile(`/sys/dev/block/${major}:${minor}/size`, 'utf8')).trim(),
    );
    if (Number.isSafeInteger(sectors) && sectors > 0) return sectors * 512;
  } catch {
    // fall through
  }
  throw new RingError('RING_IO', `cannot tell the size of block device ${path}`);
}

/**
 * Opens a regular file or a block device (symlinks followed). Read-only opens never write.
 * Writes go through the page cache; flush() is fdatasync, which reaches the device.
 */
export async function openFileDevice(
  path: string,
  opts: { readOnly?: boolean } = {},
): Promise<BlockDevice> {
  const readOnly = opts.readOnly ?? false;
  let real: string;
  try {
    real = await realpath(path);
  } catch (cause) {
    throw new RingError('RING_IO', `cannot open ${path}: ${(cause as Error).message}`, { cause });
  }
  let fh: FileHandle;
  try {
    fh = await open(real, readOnly ? constants.O_RDONLY : constants.O_RDWR);
  } catch (cause) {
    throw new RingError('RING_IO', `cannot open ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    const st = await fh.stat();
    const size = st.isBlockDevice() ? await blockDeviceSize(real, st.rdev) : st.size;
    return new FileDevice(fh, size, readOnly, path, real);
  } catch (e) {
    await fh.close();
    throw e;
  }
}
