import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BlockDevice } from './device.js';
import { RingError } from './errors.js';

/** The on-disk format version this build writes (see FORMAT.md). */
export const RING_FORMAT_VERSION = 1;

const ROOT_MAGIC = 'XSMROOT1';
const REC_MAGIC = 'XSMREC01';
export const ROOT_SIZE = 128 * 1024;
export const DATA_START = 2 * ROOT_SIZE;
export const BLOCK = 4096;
const HEADER = 256;
const ENTRY = 560;
const LABEL_MAX = 512;
export const MAX_SLOTS = 128;
const REC_HEADER = 64;
const READ_CHUNK = 1024 * 1024;
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface RecordInfo {
  seq: number;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Stored bytes of the payload. */
  size: number;
  /** The caller's small blob kept in the index (at most 512 bytes). */
  label: Uint8Array;
}

export interface RingUsage {
  capacity: number;
  used: number;
  free: number;
  maxRecords: number;
  records: { seq: number; offset: number; size: number }[];
}

export interface VerifyReport {
  ok: boolean;
  records: { seq: number; ok: boolean; code?: string; error?: string }[];
}

interface Entry {
  seq: number;
  /** Offset of the record header, relative to the start of the data area. */
  offset: number;
  length: number;
  createdAt: number;
  crc: number;
  label: Uint8Array;
}

interface Root {
  generation: number;
  nonce: Uint8Array;
  vdiUuid: string;
  srUuid: string;
  deviceSize: number;
  dataEnd: number;
  maxRecords: number;
  nextSeq: number;
  entries: Entry[];
}

const align = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
const span = (e: Entry) => align(REC_HEADER + e.length);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function corrupt(msg: string): RingError {
  return new RingError('RING_CORRUPT', msg);
}

function encodeRoot(root: Root, index: 0 | 1): Uint8Array {
  const buf = new Uint8Array(HEADER + root.entries.length * ENTRY);
  const v = new DataView(buf.buffer);
  buf.set(enc.encode(ROOT_MAGIC), 0);
  v.setUint16(8, RING_FORMAT_VERSION, true);
  v.setUint16(10, RING_FORMAT_VERSION, true); // the oldest reader version that can read it
  v.setUint16(12, index, true);
  v.setUint16(14, root.entries.length, true);
  v.setBigUint64(16, BigInt(root.generation), true);
  v.setBigUint64(24, BigInt(root.deviceSize), true);
  v.setBigUint64(32, BigInt(DATA_START), true);
  v.setBigUint64(40, BigInt(root.dataEnd), true);
  v.setUint16(48, root.maxRecords, true);
  v.setUint16(50, MAX_SLOTS, true);
  buf.set(root.nonce, 56);
  buf.set(enc.encode(root.vdiUuid), 72);
  buf.set(enc.encode(root.srUuid), 108);
  v.setBigUint64(144, BigInt(root.nextSeq), true);
  root.entries.forEach((e, i) => {
    const o = HEADER + i * ENTRY;
    v.setBigUint64(o, BigInt(e.seq), true);
    v.setBigUint64(o + 8, BigInt(e.offset), true);
    v.setBigUint64(o + 16, BigInt(e.length), true);
    v.setBigUint64(o + 24, BigInt(e.createdAt), true);
    v.setUint32(o + 32, e.crc, true);
    v.setUint16(o + 36, e.label.length, true);
    buf.set(e.label, o + 38);
  });
  v.setUint32(248, crc32(buf.subarray(248 + 4), crc32(buf.subarray(0, 248))), true);
  return buf;
}

/** An ext2/3/4 superblock magic (0xEF53) at byte 1024 + 56. */
function holdsExtFilesystem(head: Uint8Array): boolean {
  return head.length >= 1082 && head[1080] === 0x53 && head[1081] === 0xef;
}

type RootResult = { ok: true; root: Root } | { ok: false; code: string; message: string };

/** Parses one root copy; every number is checked against the geometry before it is used. */
function decodeRoot(buf: Uint8Array, index: 0 | 1, deviceSize: number): RootResult {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (dec.decode(buf.subarray(0, 8)) !== ROOT_MAGIC) {
    return { ok: false, code: 'RING_NOT_FORMATTED', message: 'no ring superblock' };
  }
  const version = v.getUint16(8, true);
  const compat = v.getUint16(10, true);
  if (compat > RING_FORMAT_VERSION) {
    return {
      ok: false,
      code: 'RING_VERSION_UNSUPPORTED',
      message: `the backup disk was written by ring format version ${version} (readable from version ${compat}); this xsmeta reads format version ${RING_FORMAT_VERSION}: upgrade xsmeta`,
    };
  }
  const count = v.getUint16(14, true);
  if (v.getUint16(12, true) !== index)
    return { ok: false, code: 'RING_CORRUPT', message: `root copy ${index} is misplaced` };
  if (count > MAX_SLOTS)
    return { ok: false, code: 'RING_CORRUPT', message: `root copy ${index}: ${count} entries` };
  const end = HEADER + count * ENTRY;
  const crc = crc32(buf.subarray(252, end), crc32(buf.subarray(0, 248)));
  if (crc !== v.getUint32(248, true)) {
    return { ok: false, code: 'RING_CORRUPT', message: `root copy ${index}: checksum mismatch` };
  }
  const big = (o: number) => {
    const n = v.getBigUint64(o, true);
    return n > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(n);
  };
  const root: Root = {
    generation: big(16),
    deviceSize: big(24),
    dataEnd: big(40),
    maxRecords: v.getUint16(48, true),
    nonce: buf.slice(56, 72),
    vdiUuid: dec.decode(buf.subarray(72, 108)),
    srUuid: dec.decode(buf.subarray(108, 144)),
    nextSeq: big(144),
    entries: [],
  };
  const bad = (m: string): RootResult => ({
    ok: false,
    code: 'RING_CORRUPT',
    message: `root copy ${index}: ${m}`,
  });
  if (big(32) !== DATA_START) return bad('bad data start');
  if (
    root.deviceSize < DATA_START + BLOCK ||
    root.dataEnd !== root.deviceSize - (root.deviceSize % BLOCK)
  ) {
    return bad('bad geometry');
  }
  if (root.deviceSize > deviceSize) {
    return {
      ok: false,
      code: 'RING_TRUNCATED',
      message: `the ring was made for ${root.deviceSize} bytes but the device has ${deviceSize}`,
    };
  }
  if (root.maxRecords < 1 || root.maxRecords > MAX_SLOTS) return bad('bad record count limit');
  if (!UUID.test(root.vdiUuid) || !UUID.test(root.srUuid)) return bad('bad identity');
  if (root.generation < 0 || root.nextSeq < 1) return bad('bad counters');
  const capacity = root.dataEnd - DATA_START;
  let lastSeq = 0;
  for (let i = 0; i < count; i++) {
    const o = HEADER + i * ENTRY;
    const e: Entry = {
      seq: big(o),
      offset: big(o + 8),
      length: big(o + 16),
      createdAt: big(o + 24),
      crc: v.getUint32(o + 32, true),
      label: buf.slice(o + 38, o + 38 + Math.min(v.getUint16(o + 36, true), LABEL_MAX)),
    };
    if (v.getUint16(o + 36, true) > LABEL_MAX) return bad(`entry ${i}: label too long`);
    if (e.seq <= lastSeq || e.seq >= root.nextSeq) return bad(`entry ${i}: sequence out of order`);
    if (e.offset < 0 || e.length < 0 || e.offset % BLOCK !== 0 || e.offset + span(e) > capacity) {
      return bad(`entry ${i}: record outside the data area`);
    }
    if (e.createdAt < 0) return bad(`entry ${i}: bad date`);
    lastSeq = e.seq;
    root.entries.push(e);
  }
  return { ok: true, root };
}

function encodeRecordHeader(e: Entry, nonce: Uint8Array): Uint8Array {
  const h = new Uint8Array(REC_HEADER);
  const v = new DataView(h.buffer);
  h.set(enc.encode(REC_MAGIC), 0);
  v.setBigUint64(8, BigInt(e.seq), true);
  v.setBigUint64(16, BigInt(e.offset), true);
  v.setBigUint64(24, BigInt(e.length), true);
  v.setBigUint64(32, BigInt(e.createdAt), true);
  v.setUint32(40, e.crc, true);
  v.setUint32(60, crc32(nonce, crc32(h.subarray(0, 60))), true);
  return h;
}

function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}

/**
 * The bounded ring of backup records on one disk. Two root copies at the start hold the index
 * (generation-numbered, checksummed); records follow, each with a header whose checksum binds its
 * sequence number, its offset and the ring's random nonce. See FORMAT.md.
 */
export class Ring {
  private closed = false;

  private constructor(
    private readonly dev: BlockDevice,
    private root: Root,
    private readonly readOnly: boolean,
  ) {}

  get vdiUuid(): string {
    return this.root.vdiUuid;
  }
  get srUuid(): string {
    return this.root.srUuid;
  }
  get maxRecords(): number {
    return this.root.maxRecords;
  }
  readonly formatVersion = RING_FORMAT_VERSION;

  /** Writes an empty ring (both root copies), destroying whatever the disk held. */
  static async format(
    dev: BlockDevice,
    opts: { vdiUuid: string; srUuid: string; maxRecords?: number },
  ): Promise<Ring> {
    if (dev.readOnly) throw new RingError('RING_READ_ONLY', 'cannot format a read-only device');
    const maxRecords = opts.maxRecords ?? 25;
    if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords > MAX_SLOTS) {
      throw new RingError('RING_INVALID_ARGUMENT', `maxRecords must be 1..${MAX_SLOTS}`);
    }
    for (const u of [opts.vdiUuid, opts.srUuid]) {
      if (!UUID.test(u))
        throw new RingError('RING_INVALID_ARGUMENT', `not a lower-case uuid: ${u}`);
    }
    if (dev.size < DATA_START + 16 * BLOCK) {
      throw new RingError(
        'RING_INVALID_ARGUMENT',
        `device too small for a ring: ${dev.size} bytes`,
      );
    }
    const root: Root = {
      generation: 1,
      nonce: new Uint8Array(randomBytes(16)),
      vdiUuid: opts.vdiUuid,
      srUuid: opts.srUuid,
      deviceSize: dev.size,
      dataEnd: dev.size - (dev.size % BLOCK),
      maxRecords,
      nextSeq: 1,
      entries: [],
    };
    // Invalidate both copies first so that a crash mid-format cannot leave an old ring visible.
    const zero = new Uint8Array(HEADER);
    await dev.write(0, zero);
    await dev.write(ROOT_SIZE, zero);
    await dev.flush();
    // Copy g % 2 holds generation g: the next commit (generation 2) then overwrites copy 0.
    await dev.write(0, encodeRoot({ ...root, generation: 0 }, 0));
    await dev.write(ROOT_SIZE, encodeRoot(root, 1));
    await dev.flush();
    return new Ring(dev, root, false);
  }

  /** Opens a ring, choosing the newest root copy that verifies (crash recovery). */
  static async open(
    dev: BlockDevice,
    opts: { readOnly?: boolean; expect?: { vdiUuid?: string; srUuid?: string } } = {},
  ): Promise<Ring> {
    if (dev.size < DATA_START) {
      throw new RingError(
        dev.size >= 8 ? 'RING_NOT_FORMATTED' : 'RING_TRUNCATED',
        `device of ${dev.size} bytes is too small to hold a ring`,
      );
    }
    const head = await dev.read(0, ROOT_SIZE);
    const results = [
      decodeRoot(head, 0, dev.size),
      decodeRoot(await dev.read(ROOT_SIZE, ROOT_SIZE), 1, dev.size),
    ];
    let best: Root | null = null;
    for (const r of results)
      if (r.ok && (!best || r.root.generation > best.generation)) best = r.root;
    if (!best) {
      const order = [
        'RING_VERSION_UNSUPPORTED',
        'RING_TRUNCATED',
        'RING_CORRUPT',
        'RING_NOT_FORMATTED',
      ];
      const failures = results.filter((r): r is Extract<RootResult, { ok: false }> => !r.ok);
      failures.sort((a, b) => order.indexOf(a.code) - order.indexOf(b.code));
      const f = failures[0]!;
      if (f.code === 'RING_NOT_FORMATTED' && holdsExtFilesystem(head)) {
        // Not blank: formatting it would destroy what it holds (an old ext3 backup, say).
        throw new RingError(
          'RING_FOREIGN',
          'the disk holds an ext2/ext3/ext4 filesystem, not a backup ring',
        );
      }
      throw new RingError(
        f.code as RingError['code'],
        f.code === 'RING_NOT_FORMATTED' ? 'the disk holds no xsmeta backup ring' : f.message,
      );
    }
    const expect = opts.expect ?? {};
    if (
      (expect.vdiUuid && expect.vdiUuid !== best.vdiUuid) ||
      (expect.srUuid && expect.srUuid !== best.srUuid)
    ) {
      throw new RingError(
        'RING_IDENTITY_MISMATCH',
        `the ring belongs to VDI ${best.vdiUuid} on SR ${best.srUuid}, not to the expected ${expect.vdiUuid ?? '-'} on ${expect.srUuid ?? '-'}`,
      );
    }
    return new Ring(dev, best, opts.readOnly ?? dev.readOnly);
  }

  private check(): void {
    if (this.closed) throw new RingError('RING_INVALID_ARGUMENT', 'the ring is closed');
  }

  /** The records, newest first, from the index read at open. */
  list(): RecordInfo[] {
    this.check();
    return this.root.entries
      .slice()
      .reverse()
      .map((e) => ({ seq: e.seq, createdAt: e.createdAt, size: e.length, label: e.label.slice() }));
  }

  usage(): RingUsage {
    const capacity = this.root.dataEnd - DATA_START;
    const used = this.root.entries.reduce((n, e) => n + span(e), 0);
    return {
      capacity,
      used,
      free: capacity - used,
      maxRecords: this.root.maxRecords,
      records: this.root.entries.map((e) => ({ seq: e.seq, offset: e.offset, size: span(e) })),
    };
  }

  /** Where a record of `need` bytes would go without touching any of `keep`, or null. */
  private place(need: number, keep: Entry[]): number | null {
    const capacity = this.root.dataEnd - DATA_START;
    if (need > capacity) return null;
    const newest = keep[keep.length - 1];
    // Ring order first (right after the newest record), then any other gap.
    const candidates = newest
      ? [newest.offset + span(newest), 0, ...keep.map((e) => e.offset + span(e))]
      : [0];
    for (let off of candidates) {
      if (off + need > capacity) off = 0;
      if (!keep.some((e) => overlaps(off, off + need, e.offset, e.offset + span(e)))) return off;
    }
    return null;
  }

  private async commit(root: Root): Promise<void> {
    const generation = this.root.generation + 1;
    const next = { ...root, generation };
    const index = (generation % 2) as 0 | 1;
    await this.dev.write(index * ROOT_SIZE, encodeRoot(next, index));
    await this.dev.flush();
    this.root = next;
  }

  /**
   * Appends one record atomically and evicts the oldest (by `createdAt`) beyond `keep`
   * (default maxRecords).
   * RING_FULL, with the disk unchanged, when it cannot fit even with only the newest keep-1 kept.
   */
  async append(input: {
    label: Uint8Array;
    data: Uint8Array;
    createdAt?: number;
    keep?: number;
  }): Promise<RecordInfo> {
    this.check();
    if (this.readOnly) throw new RingError('RING_READ_ONLY', 'the ring is open read-only');
    const keep = input.keep ?? this.root.maxRecords;
    if (!Number.isInteger(keep) || keep < 1 || keep > MAX_SLOTS) {
      throw new RingError('RING_INVALID_ARGUMENT', `keep must be 1..${MAX_SLOTS}, not ${keep}`);
    }
    if (input.label.length > LABEL_MAX) {
      throw new RingError(
        'RING_INVALID_ARGUMENT',
        `label of ${input.label.length} bytes exceeds ${LABEL_MAX}`,
      );
    }
    const createdAt = Math.floor(input.createdAt ?? Date.now());
    const entries = this.root.entries;
    // Retention keeps the newest keep-1 by creation time, not by append order: a record made
    // from an old backup (converted) may be appended after newer ones.
    const drop = new Set(
      [...entries]
        .sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq)
        .slice(0, Math.max(0, entries.length - (keep - 1)))
        .map((e) => e.seq),
    );
    const kept = entries.filter((e) => !drop.has(e.seq));
    const need = align(REC_HEADER + input.data.length);
    // Prefer space that no listed record uses: then a crash at any point shows the old set.
    let offset = this.place(need, entries);
    if (offset === null) {
      offset = this.place(need, kept);
      if (offset === null) {
        const capacity = this.root.dataEnd - DATA_START;
        const room = capacity - kept.reduce((n, e) => n + span(e), 0);
        throw new RingError(
          'RING_FULL',
          `the backup needs ${need} bytes but the disk has room for ${room} bytes after keeping the newest ${keep - 1} backup(s) (capacity ${capacity} bytes)`,
        );
      }
      // The new record must reuse space of records that this append evicts anyway: drop them
      // from the index first, so the index never points at overwritten bytes.
      await this.commit({ ...this.root, entries: kept });
    }
    const entry: Entry = {
      seq: this.root.nextSeq,
      offset,
      length: input.data.length,
      createdAt,
      crc: crc32(input.data),
      label: input.label.slice(),
    };
    const at = DATA_START + offset;
    await this.dev.write(at, encodeRecordHeader(entry, this.root.nonce));
    if (input.data.length > 0) await this.dev.write(at + REC_HEADER, input.data);
    await this.dev.flush();
    await this.commit({ ...this.root, nextSeq: entry.seq + 1, entries: [...kept, entry] });
    return { seq: entry.seq, createdAt, size: entry.length, label: entry.label.slice() };
  }

  private entry(seq: number): Entry {
    const e = this.root.entries.find((x) => x.seq === seq);
    if (!e) throw new RingError('RING_NOT_FOUND', `no backup record with seq ${seq}`);
    return e;
  }

  private async checkHeader(e: Entry): Promise<void> {
    const h = await this.dev.read(DATA_START + e.offset, REC_HEADER);
    const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
    if (dec.decode(h.subarray(0, 8)) !== REC_MAGIC)
      throw corrupt(`record ${e.seq}: header missing`);
    if (crc32(this.root.nonce, crc32(h.subarray(0, 60))) !== v.getUint32(60, true)) {
      throw corrupt(`record ${e.seq}: header checksum mismatch (stale or damaged block)`);
    }
    const seq = Number(v.getBigUint64(8, true));
    const off = Number(v.getBigUint64(16, true));
    if (seq !== e.seq)
      throw corrupt(`record ${e.seq}: found record ${seq} in its place (stale lap)`);
    if (off !== e.offset)
      throw corrupt(`record ${e.seq}: header written for offset ${off} (misdirected write)`);
    if (Number(v.getBigUint64(24, true)) !== e.length || v.getUint32(40, true) !== e.crc) {
      throw corrupt(`record ${e.seq}: header disagrees with the index`);
    }
  }

  /** Streams a record's payload; the last chunk is released only once the checksum matched. */
  async *read(seq: number): AsyncIterable<Uint8Array> {
    this.check();
    const e = this.entry(seq);
    await this.checkHeader(e);
    let crc = 0;
    let held: Uint8Array | null = null;
    for (let done = 0; done < e.length; ) {
      const n = Math.min(READ_CHUNK, e.length - done);
      const chunk = await this.dev.read(DATA_START + e.offset + REC_HEADER + done, n);
      crc = crc32(chunk, crc);
      done += n;
      if (held) yield held;
      held = chunk;
    }
    if (crc !== e.crc) throw corrupt(`record ${e.seq}: payload checksum mismatch`);
    if (held) yield held;
  }

  async readAll(seq: number): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let n = 0;
    for await (const c of this.read(seq)) {
      chunks.push(c);
      n += c.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }

  /** Checks every record; each damaged one is named by seq. */
  async verify(onProgress?: (done: number, total: number) => void): Promise<VerifyReport> {
    this.check();
    const records: VerifyReport['records'] = [];
    const list = this.root.entries.slice().reverse();
    let i = 0;
    for (const e of list) {
      try {
        for await (const _ of this.read(e.seq)) {
          // read() verifies as it goes
        }
        records.push({ seq: e.seq, ok: true });
      } catch (err) {
        if (!(err instanceof RingError)) throw err;
        records.push({ seq: e.seq, ok: false, code: err.code, error: err.message });
      }
      onProgress?.(++i, list.length);
    }
    return { ok: records.every((r) => r.ok), records };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.dev.close();
  }
}
