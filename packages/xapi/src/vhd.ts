// A dynamic VHD codec for the raw-VDI handlers (`format=vhd`), small and streaming: see
// "VHD codec" in this package's README for why it is written here rather than taken from a
// library. The layout is the one xapi's vhd-tool emits and reads:
//   ocaml/libs/vhd/vhd_format/f.ml `vhd_from_raw` (export: footer copy at 0, header at 512,
//   BAT at 2048, then each allocated 2 MiB block as bitmap + data in ascending order, footer
//   at the end; every bitmap bit set; all-zero blocks left out) and `From_input.openstream`
//   (import: blocks read in physical order, only the sectors whose bitmap bit is set written).

export const VHD_SECTOR = 512;
/** The block size vhd-tool uses (Header.create's default: 2 MiB). */
export const VHD_BLOCK = 2 * 1024 * 1024;
const SECTORS_PER_BLOCK = VHD_BLOCK / VHD_SECTOR;
const BITMAP_BYTES = SECTORS_PER_BLOCK / 8;
const FOOTER = 512;
const HEADER = 1024;
const HEADER_OFFSET = 512;
const TABLE_OFFSET = 2048;
const ABSENT = 0xffffffff;
const DYNAMIC = 3;
/** Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z). */
const VHD_EPOCH = 946_684_800;

/** A malformed or truncated VHD stream. */
export class VhdError extends Error {
  override readonly name = 'VhdError';
}

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const FOOTER_COOKIE = ascii('conectix');
const HEADER_COOKIE = ascii('cxsparse');

function checksum(buf: Uint8Array, skipAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < skipAt || i >= skipAt + 4) sum += buf[i]!;
  return ~sum >>> 0;
}

/** CHS geometry as the VHD specification computes it. */
function geometry(size: number): number {
  let total = Math.min(Math.floor(size / VHD_SECTOR), 65535 * 16 * 255);
  let spt: number;
  let heads: number;
  let cth: number;
  if (total >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
    cth = Math.floor(total / spt);
  } else {
    spt = 17;
    cth = Math.floor(total / spt);
    heads = Math.max(4, Math.floor((cth + 1023) / 1024));
    if (cth >= heads * 1024 || heads > 16) {
      spt = 31;
      heads = 16;
      cth = Math.floor(total / spt);
    }
    if (cth >= heads * 1024) {
      spt = 63;
      heads = 16;
      cth = Math.floor(total / spt);
    }
  }
  total = Math.floor(cth / heads);
  return ((total & 0xffff) << 16) | ((heads & 0xff) << 8) | (spt & 0xff);
}

function footer(size: number, uid: Uint8Array, now: number): Uint8Array {
  const b = new Uint8Array(FOOTER);
  const v = new DataView(b.buffer);
  b.set(FOOTER_COOKIE, 0);
  v.setUint32(8, 2);
  v.setUint32(12, 0x00010000);
  v.setBigUint64(16, BigInt(HEADER_OFFSET));
  v.setUint32(24, Math.max(0, Math.floor(now / 1000) - VHD_EPOCH));
  b.set(ascii('xsm '), 28);
  v.setUint32(32, 0x00010000);
  b.set(ascii('Wi2k'), 36);
  v.setBigUint64(40, BigInt(size));
  v.setBigUint64(48, BigInt(size));
  v.setUint32(56, geometry(size));
  v.setUint32(60, DYNAMIC);
  b.set(uid, 68);
  v.setUint32(64, checksum(b, 64));
  return b;
}

function header(entries: number): Uint8Array {
  const b = new Uint8Array(HEADER);
  const v = new DataView(b.buffer);
  b.set(HEADER_COOKIE, 0);
  v.setBigUint64(8, 0xffffffffffffffffn);
  v.setBigUint64(16, BigInt(TABLE_OFFSET));
  v.setUint32(24, 0x00010000);
  v.setUint32(28, entries);
  v.setUint32(32, VHD_BLOCK);
  v.setUint32(36, checksum(b, 36));
  return b;
}

/** One block to put in a VHD: its index, its 2 MiB of data, and which sectors to carry. */
export interface VhdBlock {
  index: number;
  data: Uint8Array;
  /** One bit per sector, most significant bit first (VHD order); omitted: every sector. */
  bitmap?: Uint8Array;
}

/**
 * A dynamic VHD of virtual size `size` (rounded up to whole blocks, as vhd-tool does) holding
 * `blocks` and nothing else, as a list of pieces and their total length (for Content-Length).
 */
export function encodeVhd(
  size: number,
  blocks: readonly VhdBlock[],
  opts: { uid?: Uint8Array; now?: number } = {},
): { pieces: Uint8Array[]; length: number } {
  const entries = Math.ceil(size / VHD_BLOCK);
  const virtual = entries * VHD_BLOCK;
  const sorted = [...blocks].sort((a, b) => a.index - b.index);
  const batBytes = Math.ceil((entries * 4) / VHD_SECTOR) * VHD_SECTOR;
  const bat = new Uint8Array(batBytes).fill(0xff);
  const bv = new DataView(bat.buffer);
  let next = TABLE_OFFSET + batBytes;
  const pieces: Uint8Array[] = [];
  const body: Uint8Array[] = [];
  let prev = -1;
  for (const blk of sorted) {
    if (!Number.isSafeInteger(blk.index) || blk.index < 0 || blk.index >= entries)
      throw new VhdError(`block ${blk.index} is outside a disk of ${entries} blocks`);
    if (blk.index === prev) throw new VhdError(`block ${blk.index} given twice`);
    if (blk.data.length !== VHD_BLOCK) throw new VhdError('a block must hold exactly 2 MiB');
    prev = blk.index;
    bv.setUint32(blk.index * 4, next / VHD_SECTOR);
    const bitmap = new Uint8Array(VHD_SECTOR);
    if (blk.bitmap) bitmap.set(blk.bitmap.subarray(0, BITMAP_BYTES));
    else bitmap.fill(0xff, 0, BITMAP_BYTES);
    body.push(bitmap, blk.data);
    next += VHD_SECTOR + VHD_BLOCK;
  }
  const uid = opts.uid ?? crypto.getRandomValues(new Uint8Array(16));
  const foot = footer(virtual, uid, opts.now ?? Date.now());
  const gap = new Uint8Array(TABLE_OFFSET - HEADER_OFFSET - HEADER);
  pieces.push(foot, header(entries), gap, bat, ...body, foot);
  return { pieces, length: next + FOOTER };
}

/** What a VHD stream holds, known once its BAT is read. */
export interface VhdLayout {
  /** Virtual size in bytes. */
  size: number;
  blockSize: number;
  /** Indexes of the allocated blocks, in the order their data comes in the stream. */
  allocated: number[];
}

export type VhdEvent =
  | { kind: 'layout'; layout: VhdLayout }
  /** Bytes at virtual `offset` (a run of sectors whose bitmap bits are set). */
  | { kind: 'data'; offset: number; data: Uint8Array }
  /** Every sector of block `index` was read (set or not). */
  | { kind: 'block-end'; index: number };

/** Pulls exact byte counts out of a chunk stream. */
class Pull {
  private buf: Uint8Array = new Uint8Array(0);
  private at = 0;
  /** Bytes consumed from the stream so far. */
  pos = 0;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}
  /** At least `n` unread bytes in `buf`: the chunks needed are gathered, then joined once. */
  private async fill(n: number): Promise<void> {
    let have = this.buf.length - this.at;
    if (have >= n) return;
    const chunks = [this.buf.subarray(this.at)];
    while (have < n) {
      const r = await this.it.next();
      if (r.done) throw new VhdError(`the VHD stream ends early, at byte ${this.pos}`);
      chunks.push(r.value);
      have += r.value.length;
    }
    const merged = new Uint8Array(have);
    let off = 0;
    for (const c of chunks) {
      merged.set(c, off);
      off += c.length;
    }
    this.buf = merged;
    this.at = 0;
  }
  async take(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const out = this.buf.slice(this.at, this.at + n);
    this.at += n;
    this.pos += n;
    return out;
  }
  /** Moves past bytes without copying them. */
  async skipTo(target: number): Promise<void> {
    if (target < this.pos) throw new VhdError(`the VHD stream goes backwards to ${target}`);
    while (this.pos < target) {
      const step = Math.min(target - this.pos, 1024 * 1024);
      await this.fill(step);
      this.at += step;
      this.pos += step;
    }
  }
}

function expectCookie(b: Uint8Array, cookie: Uint8Array, what: string): void {
  for (let i = 0; i < cookie.length; i++)
    if (b[i] !== cookie[i]) throw new VhdError(`not a VHD: bad ${what} cookie`);
}

async function* asAsync(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  yield* chunks;
}

/**
 * Decodes a dynamic VHD stream in one pass, as vhd-tool's `From_input.openstream` reads one:
 * footer, header, BAT, then blocks in physical order; yields the runs of set sectors. A run is
 * read whole before it is yielded, as vhd-tool does, unless `pieceSectors` splits it (a reader
 * that wants to stop early). Stop iterating at any point to stop reading.
 */
export async function* decodeVhd(
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  opts: { pieceSectors?: number } = {},
): AsyncGenerator<VhdEvent> {
  const it = asAsync(chunks);
  const p = new Pull(it);
  try {
    const foot = await p.take(FOOTER);
    expectCookie(foot, FOOTER_COOKIE, 'footer');
    const fv = new DataView(foot.buffer);
    if (fv.getUint32(64) !== checksum(foot, 64)) throw new VhdError('bad VHD footer checksum');
    if (fv.getUint32(60) !== DYNAMIC) throw new VhdError('only dynamic VHDs are accepted');
    const size = Number(fv.getBigUint64(48));
    await p.skipTo(Number(fv.getBigUint64(16)));
    const head = await p.take(HEADER);
    expectCookie(head, HEADER_COOKIE, 'header');
    const hv = new DataView(head.buffer);
    if (hv.getUint32(36) !== checksum(head, 36)) throw new VhdError('bad VHD header checksum');
    const entries = hv.getUint32(28);
    const blockSize = hv.getUint32(32);
    if (blockSize === 0 || blockSize % VHD_SECTOR !== 0 || blockSize > 64 * 1024 * 1024)
      throw new VhdError(`unsupported VHD block size ${blockSize}`);
    if (entries * blockSize < size) throw new VhdError('the VHD BAT does not cover its size');
    await p.skipTo(Number(hv.getBigUint64(16)));
    const bat = await p.take(Math.ceil((entries * 4) / VHD_SECTOR) * VHD_SECTOR);
    const bv = new DataView(bat.buffer);
    const where: { index: number; sector: number }[] = [];
    for (let i = 0; i < entries; i++) {
      const s = bv.getUint32(i * 4);
      if (s !== ABSENT) where.push({ index: i, sector: s });
    }
    where.sort((a, b) => a.sector - b.sector);
    yield {
      kind: 'layout',
      layout: { size, blockSize, allocated: where.map((w) => w.index) },
    };
    const sectors = blockSize / VHD_SECTOR;
    const bitmapBytes = Math.ceil(sectors / 8 / VHD_SECTOR) * VHD_SECTOR;
    for (const w of where) {
      await p.skipTo(w.sector * VHD_SECTOR);
      const bitmap = await p.take(bitmapBytes);
      const set = (i: number) => (bitmap[i >> 3]! & (0x80 >> (i & 7))) !== 0;
      let i = 0;
      while (i < sectors) {
        const on = set(i);
        let j = i + 1;
        while (j < sectors && set(j) === on) j++;
        for (let k = i; k < j; ) {
          const n = Math.min(j - k, opts.pieceSectors ?? sectors);
          const data = await p.take(n * VHD_SECTOR);
          if (on) yield { kind: 'data', offset: w.index * blockSize + k * VHD_SECTOR, data };
          k += n;
        }
        i = j;
      }
      yield { kind: 'block-end', index: w.index };
    }
    const last = await p.take(FOOTER);
    expectCookie(last, FOOTER_COOKIE, 'trailing footer');
  } finally {
    await it.return(undefined);
  }
}
