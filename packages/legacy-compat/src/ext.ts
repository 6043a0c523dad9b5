import { LegacyError } from './errors.js';

/** What the reader needs from a disk: read-only, random access. */
export interface ReadOnlyDevice {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export interface ExtLimits {
  /** Largest file read, bytes. */
  maxFileBytes: number;
  /** Bytes read from the device in all; default twice the device's size (at least 64 MiB). */
  maxTotalBytes: number;
  /** Entries read from one directory. */
  maxDirEntries: number;
  /** Wall-clock budget, ms. */
  timeoutMs: number;
}

export const DEFAULT_EXT_LIMITS: Omit<ExtLimits, 'maxTotalBytes'> = {
  maxFileBytes: 256 * 1024 * 1024,
  maxDirEntries: 200_000,
  timeoutMs: 60_000,
};

export interface Inode {
  ino: number;
  mode: number;
  size: number;
  flags: number;
  blocks: Uint32Array;
  /** The 60 raw bytes of the block map (where a fast symlink keeps its target). */
  blockBytes: Uint8Array;
}

export interface DirEntry {
  ino: number;
  /** The raw name bytes; `name` is set only when they are valid UTF-8. */
  raw: Uint8Array;
  name: string | null;
}

const S_IFMT = 0xf000;
export const S_IFDIR = 0x4000;
export const S_IFREG = 0x8000;
export const S_IFLNK = 0xa000;
const INCOMPAT_RECOVER = 0x4;
const INCOMPAT_EXTENTS = 0x40;
const INCOMPAT_64BIT = 0x80;
/* filetype, recover; meta_bg (0x10) is refused: its group descriptors are not contiguous. */
const INCOMPAT_KNOWN = 0x2 | INCOMPAT_RECOVER;
const EXTENTS_FL = 0x80000;
/** The most one read of file data asks for (see readFiles). */
const RUN_BYTES = 1024 * 1024;
/** Inode-table blocks read at once on a miss (see inodeTableBlock). */
const INODE_READ_AHEAD = 32;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const corrupt = (m: string) => new LegacyError('LEGACY_CORRUPT', m);

/**
 * A small read-only ext2/ext3 reader: superblock, group descriptors, inodes, direct and
 * indirect block maps, linear directory scans, fast and slow symlinks. It never writes, never
 * replays the journal, and checks every number read from disk against the geometry first.
 */
export class ExtReader {
  private readBytes = 0;
  private readonly deadline: number;
  readonly warnings: string[] = [];

  private constructor(
    private readonly dev: ReadOnlyDevice,
    readonly blockSize: number,
    private readonly blocksCount: number,
    private readonly inodesCount: number,
    private readonly inodesPerGroup: number,
    private readonly inodeSize: number,
    private readonly groupTables: number[],
    private readonly limits: ExtLimits,
  ) {
    this.deadline = Date.now() + limits.timeoutMs;
  }

  static async open(dev: ReadOnlyDevice, limits: Partial<ExtLimits> = {}): Promise<ExtReader> {
    // Everything the layout holds fits in the image once: reading it twice over is the bound
    // (a restore keeps what it read in memory, so this bounds memory too).
    const lim = {
      ...DEFAULT_EXT_LIMITS,
      maxTotalBytes: Math.max(64 * 1024 * 1024, 2 * dev.size),
      ...limits,
    };
    if (dev.size < 2048)
      throw new LegacyError(
        'LEGACY_NOT_EXT',
        'the disk is too small to hold an ext2/ext3 filesystem',
      );
    const sb = await dev.read(1024, 1024);
    const v = new DataView(sb.buffer, sb.byteOffset, sb.byteLength);
    if (v.getUint16(56, true) !== 0xef53)
      throw new LegacyError('LEGACY_NOT_EXT', 'no ext2/ext3 superblock');
    const logBs = v.getUint32(24, true);
    if (logBs > 6) throw corrupt(`bad block size exponent ${logBs}`);
    const bs = 1024 << logBs;
    const blocksCount = v.getUint32(4, true);
    const inodesCount = v.getUint32(0, true);
    const firstData = v.getUint32(20, true);
    const bpg = v.getUint32(32, true);
    const ipg = v.getUint32(40, true);
    const rev = v.getUint32(76, true);
    const inodeSize = rev >= 1 ? v.getUint16(88, true) : 128;
    const incompat = v.getUint32(96, true);
    if (incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT)) {
      throw new LegacyError(
        'LEGACY_UNSUPPORTED',
        'this is an ext4 filesystem (extents or 64-bit); legacy backups were ext3',
      );
    }
    if (incompat & ~INCOMPAT_KNOWN)
      throw new LegacyError(
        'LEGACY_UNSUPPORTED',
        `unknown incompatible features 0x${incompat.toString(16)}`,
      );
    if (blocksCount === 0 || blocksCount * bs > dev.size + bs) {
      throw corrupt(
        `the superblock claims ${blocksCount} blocks of ${bs} bytes, more than the disk's ${dev.size} bytes (truncated image?)`,
      );
    }
    if (
      bpg === 0 ||
      ipg === 0 ||
      inodeSize < 128 ||
      inodeSize > bs ||
      (inodeSize & (inodeSize - 1)) !== 0
    )
      throw corrupt('bad group geometry');
    if (firstData !== (bs === 1024 ? 1 : 0)) throw corrupt('bad first data block');
    const groups = Math.ceil((blocksCount - firstData) / bpg);
    if (groups <= 0 || groups > 1_000_000 || inodesCount > groups * ipg)
      throw corrupt('bad group count');
    const gdtBytes = groups * 32;
    const gdt = await dev.read((firstData + 1) * bs, gdtBytes);
    const gv = new DataView(gdt.buffer, gdt.byteOffset, gdt.byteLength);
    const tables: number[] = [];
    for (let g = 0; g < groups; g++) {
      const t = gv.getUint32(g * 32 + 8, true);
      if (t === 0 || t + Math.ceil((ipg * inodeSize) / bs) > blocksCount)
        throw corrupt(`group ${g}: inode table outside the disk`);
      tables.push(t);
    }
    const r = new ExtReader(dev, bs, blocksCount, inodesCount, ipg, inodeSize, tables, lim);
    if (incompat & INCOMPAT_RECOVER) {
      r.warnings.push(
        'the ext3 journal needs recovery: the on-disk state is read as it is, the journal is not replayed',
      );
    }
    return r;
  }

  /**
   * Counts `n` bytes against the budget and checks the clock. Metadata is counted as it is read,
   * a file's data by its size before it is allocated: holes cost no read but do cost memory.
   */
  private charge(n: number): void {
    if (Date.now() > this.deadline)
      throw new LegacyError(
        'LEGACY_TIMEOUT',
        `reading the legacy disk took longer than ${this.limits.timeoutMs} ms`,
      );
    this.readBytes += n;
    if (this.readBytes > this.limits.maxTotalBytes)
      throw new LegacyError('LEGACY_LIMIT', `read more than ${this.limits.maxTotalBytes} bytes`);
  }

  private async read(offset: number, length: number, charged = false): Promise<Uint8Array> {
    this.charge(charged ? 0 : length);
    if (offset < 0 || offset + length > this.dev.size)
      throw corrupt(`a read at ${offset} runs past the end of the disk (truncated image?)`);
    return this.dev.read(offset, length);
  }

  /** Recently read metadata blocks (inode tables, directories, indirect blocks). */
  private readonly cache = new Map<number, Uint8Array>();

  private async block(n: number): Promise<Uint8Array> {
    if (n === 0 || n >= this.blocksCount) throw corrupt(`block ${n} is outside the filesystem`);
    const hit = this.cache.get(n);
    if (hit) return hit;
    const b = await this.read(n * this.blockSize, this.blockSize);
    this.remember(n, b);
    return b;
  }

  /**
   * Block k of group g's inode table. A miss reads up to INODE_READ_AHEAD blocks of the table at
   * once: the old scripts wrote a backup's files in one go, so their inodes sit together, and
   * one read of a run costs about what one read of a block does.
   */
  private async inodeTableBlock(g: number, k: number): Promise<Uint8Array> {
    const first = this.groupTables[g]! + k;
    const hit = this.cache.get(first);
    if (hit) return hit;
    const tableBlocks = Math.ceil((this.inodesPerGroup * this.inodeSize) / this.blockSize);
    const n = Math.min(INODE_READ_AHEAD, tableBlocks - k);
    const run = await this.read(first * this.blockSize, n * this.blockSize);
    // Copies: a view would keep the whole run alive for as long as one of its blocks is cached.
    for (let j = 0; j < n; j++)
      this.remember(first + j, run.slice(j * this.blockSize, (j + 1) * this.blockSize));
    return this.cache.get(first)!;
  }

  private remember(n: number, b: Uint8Array): void {
    if (this.cache.size >= 4096) this.cache.delete(this.cache.keys().next().value as number);
    this.cache.set(n, b);
  }

  async inode(ino: number): Promise<Inode> {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.inodesCount)
      throw corrupt(`inode ${ino} is out of range`);
    const g = Math.floor((ino - 1) / this.inodesPerGroup);
    const i = (ino - 1) % this.inodesPerGroup;
    const perBlock = this.blockSize / this.inodeSize;
    const blk = await this.inodeTableBlock(g, Math.floor(i / perBlock));
    const at = (i % perBlock) * this.inodeSize;
    const buf = blk.subarray(at, at + 128);
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const mode = v.getUint16(0, true);
    const high = (mode & S_IFMT) === S_IFREG ? v.getUint32(108, true) : 0;
    const size = v.getUint32(4, true) + high * 2 ** 32;
    const blocks = new Uint32Array(15);
    for (let k = 0; k < 15; k++) blocks[k] = v.getUint32(40 + k * 4, true);
    return {
      ino,
      mode,
      size,
      flags: v.getUint32(32, true),
      blocks,
      blockBytes: buf.slice(40, 100),
    };
  }

  static type(i: Inode): number {
    return i.mode & S_IFMT;
  }

  /** The physical block numbers of a file's first `count` logical blocks (0 = a hole). */
  private async blockList(i: Inode, count: number): Promise<number[]> {
    if (i.flags & EXTENTS_FL)
      throw new LegacyError('LEGACY_UNSUPPORTED', `inode ${i.ino} uses extents (ext4)`);
    const per = this.blockSize / 4;
    const out: number[] = [];
    const walk = async (blk: number, depth: number): Promise<void> => {
      if (out.length >= count) return;
      if (blk === 0) {
        // A hole: as many zero blocks as this pointer covers.
        const span = per ** depth;
        for (let k = 0; k < span && out.length < count; k++) out.push(0);
        return;
      }
      if (depth === 0) {
        out.push(blk);
        return;
      }
      const b = await this.block(blk);
      const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let k = 0; k < per && out.length < count; k++)
        await walk(v.getUint32(k * 4, true), depth - 1);
    };
    for (let k = 0; k < 12 && out.length < count; k++) await walk(i.blocks[k]!, 0);
    for (let d = 1; d <= 3 && out.length < count; d++) await walk(i.blocks[11 + d]!, d);
    return out;
  }

  async readFile(i: Inode): Promise<Uint8Array> {
    return (await this.readFiles([i]))[0]!;
  }

  /**
   * The contents of several files, in their order. Their blocks are read sorted by position on
   * the disk, each run of consecutive blocks (across files, up to RUN_BYTES) in one read, four
   * reads in flight: the old scripts wrote a backup's files one after the other, so a batch of
   * them is a few large reads rather than one a file. Holes stay zero. Each file is charged to
   * the budget by its size before anything is allocated.
   */
  async readFiles(inodes: readonly Inode[]): Promise<Uint8Array[]> {
    const bs = this.blockSize;
    const outs: Uint8Array[] = [];
    const pieces: { block: number; out: Uint8Array; at: number; len: number }[] = [];
    for (const i of inodes) {
      if (i.size > this.limits.maxFileBytes)
        throw new LegacyError(
          'LEGACY_LIMIT',
          `inode ${i.ino} is ${i.size} bytes, above the ${this.limits.maxFileBytes}-byte limit`,
        );
      if (i.size > this.blocksCount * bs)
        throw corrupt(`inode ${i.ino} claims ${i.size} bytes, more than the filesystem holds`);
      this.charge(i.size);
      const n = Math.ceil(i.size / bs);
      const list = await this.blockList(i, n);
      const out = new Uint8Array(i.size);
      outs.push(out);
      for (let k = 0; k < n; k++) {
        const block = list[k]!;
        if (block === 0) continue;
        if (block >= this.blocksCount) throw corrupt(`block ${block} is outside the filesystem`);
        pieces.push({ block, out, at: k * bs, len: Math.min(bs, i.size - k * bs) });
      }
    }
    pieces.sort((a, b) => a.block - b.block);
    const runs: [number, number][] = [];
    for (let s = 0; s < pieces.length; ) {
      let e = s + 1;
      while (
        e < pieces.length &&
        pieces[e]!.block === pieces[e - 1]!.block + 1 &&
        (e + 1 - s) * bs <= RUN_BYTES
      )
        e++;
      runs.push([s, e]);
      s = e;
    }
    let next = 0;
    const worker = async () => {
      while (next < runs.length) {
        const [s, e] = runs[next++]!;
        const first = pieces[s]!;
        // The last block of a run is read only as far as its file goes.
        const length = (e - 1 - s) * bs + pieces[e - 1]!.len;
        const data = await this.read(first.block * bs, length, true);
        for (let j = s; j < e; j++) {
          const p = pieces[j]!;
          p.out.set(data.subarray((j - s) * bs, (j - s) * bs + p.len), p.at);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, runs.length) }, worker));
    return outs;
  }

  async readdir(i: Inode): Promise<DirEntry[]> {
    if (ExtReader.type(i) !== S_IFDIR) throw corrupt(`inode ${i.ino} is not a directory`);
    const data = await this.readFile(i);
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const out: DirEntry[] = [];
    let off = 0;
    while (off + 8 <= data.length) {
      const ino = v.getUint32(off, true);
      const recLen = v.getUint16(off + 4, true);
      const nameLen = v.getUint8(off + 6);
      if (recLen < 8 || recLen % 4 !== 0 || off + recLen > data.length || nameLen > recLen - 8) {
        throw corrupt(`directory inode ${i.ino}: bad entry at ${off}`);
      }
      if (ino !== 0 && nameLen > 0) {
        const raw = data.slice(off + 8, off + 8 + nameLen);
        let name: string | null;
        try {
          name = utf8.decode(raw);
        } catch {
          name = null;
        }
        out.push({ ino, raw, name });
        if (out.length > this.limits.maxDirEntries)
          throw new LegacyError(
            'LEGACY_LIMIT',
            `directory inode ${i.ino} has more than ${this.limits.maxDirEntries} entries`,
          );
      }
      off += recLen;
    }
    return out;
  }

  async readlink(i: Inode): Promise<string> {
    if (ExtReader.type(i) !== S_IFLNK) throw corrupt(`inode ${i.ino} is not a symlink`);
    if (i.size > 4096) throw corrupt(`symlink inode ${i.ino} is ${i.size} bytes long`);
    let bytes: Uint8Array;
    // A fast symlink keeps its target in the block map itself.
    if (i.size < 60) bytes = i.blockBytes.subarray(0, i.size);
    else bytes = await this.readFile(i);
    try {
      return utf8.decode(bytes);
    } catch {
      throw corrupt(`symlink inode ${i.ino} is not UTF-8`);
    }
  }

  /** Looks a name up in a directory (no symlink is followed). */
  async child(dir: Inode, name: string): Promise<Inode | null> {
    const e = (await this.readdir(dir)).find((x) => x.name === name);
    return e ? this.inode(e.ino) : null;
  }

  async root(): Promise<Inode> {
    const r = await this.inode(2);
    if (ExtReader.type(r) !== S_IFDIR) throw corrupt('the root inode is not a directory');
    return r;
  }
}
