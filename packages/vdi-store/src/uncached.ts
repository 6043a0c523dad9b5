/**
 * Reads of single blocks that leave nothing in the page cache (O_DIRECT), for the few scattered
 * record headers that opening a ring looks at (ring/scan.ts `findBeyond`).
 *
 * Why: a header read through the page cache leaves a cached block at the start of every record.
 * When `verify` then reads the disk front to back, each cached block restarts the kernel's
 * read-ahead from small windows and small page-cache folios (mm/readahead.c), and the whole read
 * gets 40-60% slower and costs about 30 ms more CPU per 192 MiB here (bench/NOTES.md,
 * "v-verify"). Read past the cache, the headers leave no trace and the read keeps its speed.
 *
 * O_DIRECT needs the buffer, the offset and the length aligned to the device's logical block:
 * the buffers are slots of one WebAssembly memory page, which V8 maps page-aligned; offsets and
 * lengths are whole BLOCKs. Where any of it is refused (no O_DIRECT on the filesystem, tmpfs,
 * no WebAssembly), the reader reports null and the caller reads through the cache as before.
 */
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';

/** The block read: a multiple of every logical block size in use (512 and 4096). */
export const UNCACHED_BLOCK = 4096;
/** WebAssembly's page: 16 slots of one block. */
const WASM_PAGE = 64 * 1024;

// Node's type definitions leave out the WebAssembly global; only its memory is used here.
type WasmMemory = new (d: { initial: number }) => { buffer: ArrayBuffer };
const wasmMemory = (globalThis as { WebAssembly?: { Memory?: WasmMemory } }).WebAssembly?.Memory;

export class UncachedReader {
  private readonly free: Uint8Array[] = [];
  private readonly waiting: ((slot: Uint8Array) => void)[] = [];
  private refused = false;

  private constructor(
    private readonly fh: FileHandle,
    page: ArrayBuffer,
  ) {
    for (let o = 0; o + UNCACHED_BLOCK <= page.byteLength; o += UNCACHED_BLOCK)
      this.free.push(new Uint8Array(page, o, UNCACHED_BLOCK));
  }

  /** A reader of `path`, or null where O_DIRECT or aligned memory is not to be had. */
  static async open(path: string): Promise<UncachedReader | null> {
    const direct = constants.O_DIRECT;
    if (!wasmMemory || direct === undefined) return null;
    let page: ArrayBuffer;
    try {
      page = new wasmMemory({ initial: 1 }).buffer;
    } catch {
      return null;
    }
    if (page.byteLength < WASM_PAGE) return null;
    try {
      return new UncachedReader(await open(path, constants.O_RDONLY | direct), page);
    } catch {
      return null;
    }
  }

  /**
   * The bytes of the block at `offset` (a multiple of UNCACHED_BLOCK), fewer at the end of the
   * file; null once a read was refused (then every later call is null too).
   */
  async block(offset: number): Promise<Uint8Array | null> {
    if (this.refused) return null;
    const slot = await this.take();
    try {
      const { bytesRead } = await this.fh.read(slot, 0, UNCACHED_BLOCK, offset);
      return slot.slice(0, bytesRead);
    } catch {
      // EINVAL (an alignment the device refuses) or any other error: the cached read that the
      // caller falls back to reports a real I/O error as it always did.
      this.refused = true;
      return null;
    } finally {
      this.give(slot);
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  private take(): Promise<Uint8Array> {
    const slot = this.free.pop();
    return slot ? Promise.resolve(slot) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private give(slot: Uint8Array): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }
}
