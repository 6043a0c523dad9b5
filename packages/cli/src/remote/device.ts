// A BlockDevice over XAPI's raw-VDI handlers, for a machine that is not a pool host: reads
// through `GET /export_raw_vdi?format=vhd`, writes through `PUT /import_raw_vdi?format=vhd`.
//
// What limits a transfer (ocaml/xapi/export_raw_vdi.ml, import_raw_vdi.ml,
// vhd_tool_wrapper.ml): neither handler takes a byte range. An export streams the whole disk,
// in `vhd` format only its non-zero 2 MiB blocks in ascending order (f.ml `Raw_input.vhd`), so
// a read stops the stream as soon as it has the bytes it needs: the ring's roots sit in the
// first block, `list` moves a few hundred KiB whatever the ring holds. An import writes what
// its VHD body carries: only the sectors whose bitmap bit is set, so a flush sends only the
// blocks it changed, with only the changed sectors marked. Each flush is one PUT whose task
// must succeed before the next: the ring flushes its record blocks before it writes its root,
// so a PUT cut part-way (the import writes as it reads) leaves the root, and the ring, as
// they were.
import { type BlockDevice, RingError } from '@xsmeta/vdi-store';
import {
  decodeVhd,
  encodeVhd,
  type VdiRecord,
  VHD_BLOCK,
  VHD_SECTOR,
  type VhdBlock,
  type VhdEvent,
  type XapiClient,
} from '@xsmeta/xapi';

const SECTORS = VHD_BLOCK / VHD_SECTOR;

/** Bytes and requests a remote device has moved. */
export interface TransferStats {
  /** Bytes of export bodies consumed. */
  bytesRead: number;
  /** Bytes of import bodies sent. */
  bytesWritten: number;
  exports: number;
  imports: number;
  /** Most 2 MiB blocks held at once (the cache's peak). */
  peakBlocks: number;
}

interface Block {
  data: Uint8Array;
  /** Per sector: 1 known (read or written), 0 not yet known. */
  known: Uint8Array;
  /** Per sector: 1 written since the last flush. */
  dirty: Uint8Array;
}

async function* counted(
  chunks: AsyncIterable<Uint8Array>,
  stats: TransferStats,
): AsyncGenerator<Uint8Array> {
  for await (const c of chunks) {
    stats.bytesRead += c.length;
    yield c;
  }
}

export class RemoteDevice implements BlockDevice {
  readonly stats: TransferStats = {
    bytesRead: 0,
    bytesWritten: 0,
    exports: 0,
    imports: 0,
    peakBlocks: 0,
  };
  /** Blocks held, least recently used first (a Map keeps insertion order). */
  private blocks = new Map<number, Block>();
  /** Blocks the operation in progress needs: never evicted. */
  private pinned: { first: number; last: number } | null = null;
  /** Blocks the export said are absent (all zero) and that nothing has written since. */
  private zero = new Set<number>();
  private live: AsyncGenerator<VhdEvent> | null = null;
  /** The block the live stream is in (blocks come in ascending order). */
  private liveAt = -1;
  private closed = false;
  /**
   * The operation in progress: reads, writes, flushes and close run one at a time, in the order
   * they were called. They share one export stream and one pinned range; run at once, each read
   * would start its own export and the one before would be left open.
   */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly xapi: XapiClient,
    private readonly vdiRef: string,
    readonly size: number,
    readonly readOnly: boolean,
    private readonly cacheBlocks: number,
  ) {}

  /**
   * `cacheBlocks`: how many clean 2 MiB blocks are kept (default: all, so that each byte is
   * streamed once: `verify` reads the records newest first, which a small cache would pay for
   * with one stream per record). Beyond it the least recently used is dropped and streamed
   * again if asked for; blocks with unsent writes always stay.
   */
  static async open(
    xapi: XapiClient,
    vdiRef: string,
    opts: { readOnly?: boolean; cacheBlocks?: number } = {},
  ): Promise<RemoteDevice> {
    const vdi = await xapi.getRecord<VdiRecord>('VDI', vdiRef);
    return new RemoteDevice(
      xapi,
      vdiRef,
      Number(vdi.virtual_size),
      opts.readOnly ?? false,
      Math.max(2, opts.cacheBlocks ?? Number.POSITIVE_INFINITY),
    );
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private evict(): void {
    for (const [i, b] of this.blocks) {
      if (this.blocks.size <= this.cacheBlocks) return;
      if (b.dirty.includes(1)) continue;
      if (this.pinned && i >= this.pinned.first && i <= this.pinned.last) continue;
      this.blocks.delete(i);
    }
  }

  private async pinning<T>(offset: number, length: number, fn: () => Promise<T>): Promise<T> {
    this.pinned = {
      first: Math.floor(offset / VHD_BLOCK),
      last: Math.floor((offset + Math.max(0, length - 1)) / VHD_BLOCK),
    };
    try {
      return await fn();
    } finally {
      this.pinned = null;
    }
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new RingError('RING_IO', 'the remote device is closed');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0)
      throw new RingError('RING_INVALID_ARGUMENT', `bad range offset=${offset} length=${length}`);
    if (offset + length > this.size)
      throw new RingError(
        'RING_TRUNCATED',
        `read past the end of the device (${offset + length} > ${this.size} bytes)`,
      );
  }

  private block(i: number): Block {
    let b = this.blocks.get(i);
    if (b) {
      this.blocks.delete(i);
      this.blocks.set(i, b);
    } else {
      b = {
        data: new Uint8Array(VHD_BLOCK),
        known: new Uint8Array(SECTORS),
        dirty: new Uint8Array(SECTORS),
      };
      if (this.zero.has(i)) b.known.fill(1);
      this.blocks.set(i, b);
      this.evict();
      this.stats.peakBlocks = Math.max(this.stats.peakBlocks, this.blocks.size);
    }
    return b;
  }

  /** The block of the first sector of the range not known yet, or null when all are. */
  private firstUnknown(offset: number, length: number): number | null {
    if (length === 0) return null;
    const first = Math.floor(offset / VHD_SECTOR);
    const last = Math.floor((offset + length - 1) / VHD_SECTOR);
    for (let s = first; s <= last; s++) {
      const bi = Math.floor(s / SECTORS);
      const b = this.blocks.get(bi);
      if (b ? !b.known[s % SECTORS] : !this.zero.has(bi)) return bi;
    }
    return null;
  }

  private apply(ev: VhdEvent): void {
    if (ev.kind === 'layout') {
      const have = new Set(ev.layout.allocated);
      for (let i = 0; i * VHD_BLOCK < this.size; i++)
        if (!have.has(i)) {
          this.zero.add(i);
          this.blocks.get(i)?.known.fill(1);
        }
      return;
    }
    if (ev.kind !== 'data') return;
    this.liveAt = Math.floor(ev.offset / VHD_BLOCK);
    // Sectors already known (written here, or read before) keep their bytes.
    for (let at = 0; at < ev.data.length; at += VHD_SECTOR) {
      const off = ev.offset + at;
      if (off >= this.size) break;
      const b = this.block(Math.floor(off / VHD_BLOCK));
      const s = (off % VHD_BLOCK) / VHD_SECTOR;
      if (b.known[s]) continue;
      b.data.set(ev.data.subarray(at, at + VHD_SECTOR), s * VHD_SECTOR);
      b.known[s] = 1;
    }
  }

  private async stopStream(): Promise<void> {
    const live = this.live;
    this.live = null;
    if (live) await live.return(undefined).catch(() => {});
  }

  /** Reads the export stream until [offset, offset+length) is known. */
  private async fetch(offset: number, length: number): Promise<void> {
    let restarted = false;
    for (;;) {
      const need = this.firstUnknown(offset, length);
      if (need === null) return;
      // The stream is past what is needed (it was dropped from the cache): start again.
      if (this.live && need < this.liveAt) await this.stopStream();
      if (!this.live) {
        if (restarted)
          throw new RingError('RING_IO', 'the exported VDI does not cover the bytes asked for');
        restarted = true;
        this.stats.exports++;
        this.liveAt = -1;
        try {
          const body = await this.xapi.exportRawVdi(this.vdiRef, { format: 'vhd' });
          this.live = decodeVhd(counted(body, this.stats), { pieceSectors: 64 });
        } catch (cause) {
          throw new RingError('RING_IO', `cannot read the VDI through XAPI: ${String(cause)}`, {
            cause,
          });
        }
      }
      let r: IteratorResult<VhdEvent>;
      try {
        r = await this.live.next();
      } catch (cause) {
        this.live = null;
        // A stream left idle between reads may have been closed: start again once.
        if (!restarted) continue;
        throw new RingError('RING_IO', `reading the VDI through XAPI failed: ${String(cause)}`, {
          cause,
        });
      }
      if (r.done) this.live = null;
      else this.apply(r.value);
    }
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.serial(async () => {
      this.check(offset, length);
      return this.pinning(offset, length, () => this.copyOut(offset, length));
    });
  }

  private async copyOut(offset: number, length: number): Promise<Uint8Array> {
    await this.fetch(offset, length);
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const at = offset + done;
      const bi = Math.floor(at / VHD_BLOCK);
      const within = at % VHD_BLOCK;
      const n = Math.min(length - done, VHD_BLOCK - within);
      const b = this.blocks.get(bi);
      if (b) out.set(b.data.subarray(within, within + n), done);
      done += n;
    }
    return out;
  }

  write(offset: number, data: Uint8Array): Promise<void> {
    return this.serial(async () => {
      if (this.readOnly) throw new RingError('RING_READ_ONLY', 'the remote device is read-only');
      this.check(offset, data.length);
      if (data.length === 0) return;
      await this.pinning(offset, data.length, () => this.copyIn(offset, data));
    });
  }

  private async copyIn(offset: number, data: Uint8Array): Promise<void> {
    // A partly written sector keeps its other bytes: learn them first.
    const head = offset - (offset % VHD_SECTOR);
    const end = offset + data.length;
    if (offset % VHD_SECTOR) await this.fetch(head, VHD_SECTOR);
    if (end % VHD_SECTOR) await this.fetch(end - (end % VHD_SECTOR), VHD_SECTOR);
    for (let done = 0; done < data.length; ) {
      const at = offset + done;
      const bi = Math.floor(at / VHD_BLOCK);
      const within = at % VHD_BLOCK;
      const n = Math.min(data.length - done, VHD_BLOCK - within);
      const b = this.block(bi);
      b.data.set(data.subarray(done, done + n), within);
      const s0 = Math.floor(within / VHD_SECTOR);
      const s1 = Math.floor((within + n - 1) / VHD_SECTOR);
      b.known.fill(1, s0, s1 + 1);
      b.dirty.fill(1, s0, s1 + 1);
      this.zero.delete(bi);
      done += n;
    }
  }

  /** Sends every write since the last flush as one VHD (changed blocks, changed sectors). */
  flush(): Promise<void> {
    return this.serial(() => this.send());
  }

  private async send(): Promise<void> {
    if (this.readOnly) return;
    const blocks: VhdBlock[] = [];
    for (const [index, b] of this.blocks) {
      if (!b.dirty.includes(1)) continue;
      const bitmap = new Uint8Array(VHD_SECTOR);
      b.dirty.forEach((d, s) => {
        if (d) bitmap[s >> 3]! |= 0x80 >> (s & 7);
      });
      blocks.push({ index, data: b.data, bitmap });
    }
    if (blocks.length === 0) return;
    // The VDI is not read and written at once: the export stops before the import.
    await this.stopStream();
    const { pieces, length } = encodeVhd(this.size, blocks);
    async function* body(): AsyncGenerator<Uint8Array> {
      yield* pieces;
    }
    this.stats.imports++;
    try {
      await this.xapi.importRawVdi(this.vdiRef, body(), { format: 'vhd', length });
    } catch (cause) {
      // What reached the disk is unknown now: forget everything, read it again when asked.
      this.blocks.clear();
      this.zero.clear();
      throw new RingError('RING_IO', `writing the VDI through XAPI failed: ${String(cause)}`, {
        cause,
      });
    }
    this.stats.bytesWritten += length;
    for (const { index } of blocks) this.blocks.get(index)!.dirty.fill(0);
  }

  /** Flushes what is left (a file device's writes also outlive its close), stops any read. */
  close(): Promise<void> {
    return this.serial(async () => {
      if (this.closed) return;
      try {
        await this.send();
      } finally {
        this.closed = true;
        await this.stopStream();
        this.blocks.clear();
      }
    });
  }
}
