import {
  createHash,
  createPublicKey,
  type KeyObject,
  randomBytes,
  sign,
  verify as verifySignature,
} from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BlockDevice } from './device.js';
import { RingError } from './errors.js';

/** The on-disk format version this build writes (see FORMAT.md). */
export const RING_FORMAT_VERSION = 2;
/**
 * The oldest reader version able to read what this build writes: version 2 records carry their
 * label after the payload (flag in the index entry), which a version 1 reader would misread.
 */
const RING_COMPAT_VERSION = 2;

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
/** Reads of a record kept in flight while one chunk is checked (1 MiB chunks, cold disk: 2). */
const READ_AHEAD = 2;
const SCAN_CHUNK = 4 * 1024 * 1024;
/** Index entry flag: the record carries its label after its payload (format version 2). */
const FLAG_LABEL_IN_RECORD = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Index entry flag: the record carries a signature trailer after its label. */
const FLAG_SIGNED = 2;
/** Record header flag (u16 at 46): the record is signed. */
const REC_SIGNED = 1;
/** The signature trailer: Ed25519 signature (64 bytes) then the signing key's id (8 bytes). */
const SIG_TRAILER = 72;
const SIG_DOMAIN = enc.encode('xsmeta ring record signature v1\0');

const keyIds = new WeakMap<KeyObject, Uint8Array>();

/**
 * The first 8 bytes of the SHA-256 of a public key's SPKI DER: names the key in a record.
 * Computed once per key (verify checks it for every signed record).
 */
function keyId(key: KeyObject): Uint8Array {
  let id = keyIds.get(key);
  if (!id) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    id = createHash('sha256')
      .update(pub.export({ type: 'spki', format: 'der' }))
      .digest()
      .subarray(0, 8);
    keyIds.set(key, id);
  }
  return id;
}

/** What a record's signature covers: its creation time, the payload's SHA-256 and its label. */
function signedMessage(createdAt: number, digest: Uint8Array, label: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIG_DOMAIN.length + 8 + 32 + 2 + label.length);
  const v = new DataView(out.buffer);
  out.set(SIG_DOMAIN, 0);
  const o = SIG_DOMAIN.length;
  v.setBigUint64(o, BigInt(createdAt), true);
  out.set(digest, o + 8);
  v.setUint16(o + 40, label.length, true);
  out.set(label, o + 42);
  return out;
}

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

/**
 * What opening found about the root: `ok` when both copies are valid and consecutive and no
 * committed record lies beyond the root; otherwise one warning per finding (a damaged or
 * rolled-back copy, records recovered from their own headers, a shortened device, a root rebuilt
 * from a scan) and what was done about it.
 */
export interface RingStatus {
  ok: boolean;
  warnings: string[];
  /** Seqs of committed records found beyond the root from their own headers (recovered). */
  recovered: number[];
  /** Both copies were unusable: the index was rebuilt by scanning the records; writes are refused. */
  rebuilt: boolean;
  /** A writable open wrote the recovered root back. */
  repaired: boolean;
  /** Device size when it is shorter than the ring was made for, else null. */
  truncatedTo: number | null;
}

export interface VerifyReport {
  ok: boolean;
  /** The root's state (see RingStatus); a damaged root makes `ok` false. */
  root: RingStatus;
  /**
   * One per record, newest first. A record evicted by a concurrent backup while it was read is
   * `ok` with `code: 'RING_EVICTED'`: gone by design, not damaged.
   */
  records: { seq: number; ok: boolean; code?: string; error?: string }[];
}

/**
 * A check of a record's bytes beyond its checksums (e.g. decoding every part within the limits
 * the reader applies); it throws to fail the record.
 */
export type RecordCheck = (data: Uint8Array, seq: number) => Promise<void>;

/** What `Ring.repair` found, and whether it wrote the rebuilt root. */
export interface RepairReport {
  /** The records the rebuilt root lists, oldest first. */
  records: RecordInfo[];
  /** Records found but left out (another ring's, beyond retention), one line each. */
  ignored: string[];
  warnings: string[];
  /** The root as found was already complete: nothing to do. */
  clean: boolean;
  written: boolean;
}

interface Entry {
  seq: number;
  /** Offset of the record header, relative to the start of the data area. */
  offset: number;
  length: number;
  createdAt: number;
  crc: number;
  label: Uint8Array;
  /** The label is also stored in the record, after the payload (format version 2). */
  inline: boolean;
  /** A signature trailer follows the label. */
  signed: boolean;
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
const span = (e: Entry) =>
  align(REC_HEADER + e.length + (e.inline ? e.label.length : 0) + (e.signed ? SIG_TRAILER : 0));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function corrupt(msg: string): RingError {
  return new RingError('RING_CORRUPT', msg);
}

function encodeRoot(root: Root, index: 0 | 1): Uint8Array {
  const buf = new Uint8Array(HEADER + root.entries.length * ENTRY);
  const v = new DataView(buf.buffer);
  buf.set(enc.encode(ROOT_MAGIC), 0);
  v.setUint16(8, RING_FORMAT_VERSION, true);
  v.setUint16(10, RING_COMPAT_VERSION, true); // the oldest reader version that can read it
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
    buf[o + 550] = (e.inline ? FLAG_LABEL_IN_RECORD : 0) | (e.signed ? FLAG_SIGNED : 0);
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
  // Versions are trusted only once the checksum holds (its place and coverage are fixed for
  // every version, FORMAT.md): a flipped bit there is damage, not a newer format.
  const version = v.getUint16(8, true);
  const compat = v.getUint16(10, true);
  if (compat > RING_FORMAT_VERSION) {
    return {
      ok: false,
      code: 'RING_VERSION_UNSUPPORTED',
      message: `the backup disk was written by ring format version ${version} (readable from version ${compat}); this xsmeta reads format version ${RING_FORMAT_VERSION}: upgrade xsmeta`,
    };
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
  // A device shorter than the ring keeps the records wholly inside it readable (Ring.open).
  if (deviceSize < DATA_START) return bad('device shorter than the root area');
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
      inline: (buf[o + 550]! & FLAG_LABEL_IN_RECORD) !== 0,
      signed: (buf[o + 550]! & FLAG_SIGNED) !== 0,
    };
    if (v.getUint16(o + 36, true) > LABEL_MAX) return bad(`entry ${i}: label too long`);
    if ((buf[o + 550]! & ~(FLAG_LABEL_IN_RECORD | FLAG_SIGNED)) !== 0)
      return bad(`entry ${i}: unknown flags`);
    if (e.signed && !e.inline) return bad(`entry ${i}: bad flags`);
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
  if (e.inline) {
    v.setUint16(44, e.label.length, true);
    v.setUint32(48, crc32(e.label), true);
  }
  if (e.signed) v.setUint16(46, REC_SIGNED, true);
  v.setUint32(60, crc32(nonce, crc32(h.subarray(0, 60))), true);
  return h;
}

interface RecordHeader {
  seq: number;
  offset: number;
  length: number;
  createdAt: number;
  crc: number;
  labelLength: number;
  labelCrc: number;
  flags: number;
  stored: number;
  /** crc32(bytes 0..59, then 16 zero bytes) xor the stored checksum: G(nonce), see nonceFor. */
  fingerprint: number;
}

const ZERO_NONCE = new Uint8Array(16);

/** Parses a record header's fields (magic checked, checksum not). */
function parseRecordHeader(h: Uint8Array): RecordHeader | null {
  if (h.length < REC_HEADER || dec.decode(h.subarray(0, 8)) !== REC_MAGIC) return null;
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const big = (o: number) => {
    const n = v.getBigUint64(o, true);
    return n > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(n);
  };
  const stored = v.getUint32(60, true);
  return {
    seq: big(8),
    offset: big(16),
    length: big(24),
    createdAt: big(32),
    crc: v.getUint32(40, true),
    labelLength: v.getUint16(44, true),
    labelCrc: v.getUint32(48, true),
    flags: v.getUint16(46, true),
    stored,
    fingerprint: (crc32(ZERO_NONCE, crc32(h.subarray(0, 60))) ^ stored) >>> 0,
  };
}

const headerMatches = (h: Uint8Array, stored: number, nonce: Uint8Array) =>
  crc32(nonce, crc32(h.subarray(0, 60))) === stored;

/**
 * A nonce under which every header of fingerprint `f` checks, for a root rebuilt after both
 * copies (and so the ring's nonce) were lost. CRC-32 is affine: for a fixed header,
 * crc(h ‖ N) = crc(h ‖ 0) ⊕ G(N) with G linear over GF(2) and the same for every header, so a
 * header's fingerprint crc(h ‖ 0) ⊕ stored equals G(N) and any N' with G(N') = G(N) checks
 * exactly the headers the lost nonce checked. Solved by Gaussian elimination on 128 bits.
 */
function nonceFor(f: number): Uint8Array | null {
  const zero = crc32(new Uint8Array(76));
  const rows: { g: number; bits: Uint8Array }[] = [];
  for (let i = 0; i < 128; i++) {
    const msg = new Uint8Array(76);
    msg[60 + (i >> 3)] = 1 << (i & 7);
    const bits = new Uint8Array(16);
    bits[i >> 3] = 1 << (i & 7);
    rows.push({ g: (crc32(msg) ^ zero) >>> 0, bits });
  }
  // Reduce to an echelon basis keyed by the pivot bit of g.
  const basis = new Map<number, { g: number; bits: Uint8Array }>();
  for (const r of rows) {
    let { g } = r;
    const bits = r.bits.slice();
    for (let b = 31; b >= 0 && g !== 0; b--) {
      if (!((g >>> b) & 1)) continue;
      const p = basis.get(b);
      if (!p) {
        basis.set(b, { g, bits });
        g = 0;
        break;
      }
      g = (g ^ p.g) >>> 0;
      for (let k = 0; k < 16; k++) bits[k]! ^= p.bits[k]!;
    }
  }
  let target = f >>> 0;
  const out = new Uint8Array(16);
  for (let b = 31; b >= 0; b--) {
    if (!((target >>> b) & 1)) continue;
    const p = basis.get(b);
    if (!p) return null;
    target = (target ^ p.g) >>> 0;
    for (let k = 0; k < 16; k++) out[k]! ^= p.bits[k]!;
  }
  return target === 0 ? out : null;
}

/** The identity, nonce and limits of a root copy whose checks failed, if its fields look sane. */
function salvageRoot(buf: Uint8Array): {
  nonce: Uint8Array;
  vdiUuid: string;
  srUuid: string;
  maxRecords: number;
} | null {
  if (dec.decode(buf.subarray(0, 8)) !== ROOT_MAGIC) return null;
  const vdiUuid = dec.decode(buf.subarray(72, 108));
  const srUuid = dec.decode(buf.subarray(108, 144));
  if (!UUID.test(vdiUuid) || !UUID.test(srUuid)) return null;
  const maxRecords = new DataView(buf.buffer, buf.byteOffset).getUint16(48, true);
  return {
    nonce: buf.slice(56, 72),
    vdiUuid,
    srUuid,
    maxRecords: maxRecords >= 1 && maxRecords <= MAX_SLOTS ? maxRecords : 25,
  };
}

function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}

/** The index entries of records found, as the fingerprint of their header checksums. */
interface Found {
  entry: Entry;
  fingerprint: number;
}

/**
 * Reads and checks the record whose header sits at data offset `off`: magic, its own offset,
 * bounds, seq at least `minSeq`, header checksum under `nonce` (when null: any nonce, the
 * fingerprint says which), then the payload and label checksums, reading the payload in chunks.
 * Null when any check fails. `limit` is how many data bytes the device holds.
 */
async function recordAt(
  dev: BlockDevice,
  capacity: number,
  limit: number,
  off: number,
  nonce: Uint8Array | null,
  minSeq: number,
): Promise<Found | null> {
  if (off < 0 || off % BLOCK !== 0 || off + REC_HEADER > Math.min(limit, capacity)) return null;
  const raw = await dev.read(DATA_START + off, REC_HEADER);
  const h = parseRecordHeader(raw);
  if (!h || h.offset !== off || h.seq < minSeq || h.length < 0 || h.createdAt < 0) return null;
  if (h.labelLength > LABEL_MAX || (h.flags & ~REC_SIGNED) !== 0) return null;
  if (nonce && !headerMatches(raw, h.stored, nonce)) return null;
  const signed = (h.flags & REC_SIGNED) !== 0;
  const total = REC_HEADER + h.length + h.labelLength + (signed ? SIG_TRAILER : 0);
  if (off + total > limit || off + align(total) > capacity) return null;
  let crc = 0;
  for (let done = 0; done < h.length; ) {
    const n = Math.min(READ_CHUNK, h.length - done);
    crc = crc32(await dev.read(DATA_START + off + REC_HEADER + done, n), crc);
    done += n;
  }
  if (crc !== h.crc) return null;
  const label =
    h.labelLength > 0
      ? await dev.read(DATA_START + off + REC_HEADER + h.length, h.labelLength)
      : new Uint8Array(0);
  if (h.labelLength > 0 && crc32(label) !== h.labelCrc) return null;
  return {
    entry: {
      seq: h.seq,
      offset: off,
      length: h.length,
      createdAt: h.createdAt,
      crc: h.crc,
      label,
      inline: true,
      signed,
    },
    fingerprint: h.fingerprint,
  };
}

/**
 * Committed records beyond a root: where an append would have put them (right after a record,
 * at the start, or where a listed record lies), followed from record to record. Reads one
 * header per place (at most 2 × entries + 1, plus one per record found), so opening stays cheap.
 */
async function findBeyond(dev: BlockDevice, root: Root, limit: number): Promise<Entry[]> {
  const capacity = root.dataEnd - DATA_START;
  const found: Entry[] = [];
  const tried = new Set<number>();
  let frontier = [0, ...root.entries.flatMap((e) => [e.offset, e.offset + span(e)])];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const off of frontier) {
      if (tried.has(off)) continue;
      tried.add(off);
      const r = await recordAt(dev, capacity, limit, off, root.nonce, root.nextSeq);
      if (r) {
        found.push(r.entry);
        next.push(r.entry.offset + span(r.entry));
      }
    }
    frontier = next;
  }
  return found.sort((a, b) => a.seq - b.seq);
}

/** Every intact record in the data area, by a scan of block starts (payloads are skipped). */
async function scanRecords(
  dev: BlockDevice,
  capacity: number,
  limit: number,
  nonce: Uint8Array | null,
  minSeq = 1,
): Promise<Found[]> {
  const out: Found[] = [];
  const end = Math.min(limit, capacity);
  let chunk: Uint8Array = new Uint8Array(0);
  let chunkAt = 0;
  for (let off = 0; off + REC_HEADER <= end; ) {
    if (off < chunkAt || off + 8 > chunkAt + chunk.length) {
      chunkAt = off;
      chunk = await dev.read(DATA_START + off, Math.min(SCAN_CHUNK, end - off));
    }
    if (isRecMagic(chunk, off - chunkAt)) {
      const r = await recordAt(dev, capacity, limit, off, nonce, minSeq);
      if (r) {
        out.push(r);
        off += span(r.entry);
        continue;
      }
    }
    off += BLOCK;
  }
  return out;
}

const REC_MAGIC_BYTES = enc.encode(REC_MAGIC);

function isRecMagic(buf: Uint8Array, at: number): boolean {
  for (let k = 0; k < 8; k++) if (buf[at + k] !== REC_MAGIC_BYTES[k]) return false;
  return true;
}

/** How many block starts of the data area hold a record header's magic (damaged or not). */
async function countHeaders(dev: BlockDevice): Promise<number> {
  let n = 0;
  for (let off = DATA_START; off + BLOCK <= dev.size; off += SCAN_CHUNK) {
    const chunk = await dev.read(off, Math.min(SCAN_CHUNK, dev.size - off));
    for (let i = 0; i + 8 <= chunk.length; i += BLOCK) if (isRecMagic(chunk, i)) n++;
  }
  return n;
}

/** Adds records found beyond a root: each drops the listed records whose space it reused. */
function merge(root: Root, found: Entry[]): Root {
  let entries = root.entries.slice();
  let nextSeq = root.nextSeq;
  for (const f of found) {
    entries = entries.filter(
      (e) => !overlaps(e.offset, e.offset + span(e), f.offset, f.offset + span(f)),
    );
    entries.push(f);
    nextSeq = Math.max(nextSeq, f.seq + 1);
  }
  while (entries.length > MAX_SLOTS) {
    const oldest = entries.reduce((a, b) => (b.createdAt < a.createdAt ? b : a));
    entries = entries.filter((e) => e !== oldest);
  }
  return { ...root, entries, nextSeq };
}

const fingerprintOf = (nonce: Uint8Array) =>
  (crc32(nonce, crc32(new Uint8Array(60))) ^ crc32(new Uint8Array(76))) >>> 0;

type Failure = Extract<RootResult, { ok: false }>;

/**
 * Builds a root from the records alone, for when both copies are unusable. Keeps the records
 * of one ring: those whose header checksums agree with a nonce salvaged from a damaged copy, or,
 * when none does (the nonce is lost), the fingerprint of the newest record; within those, the
 * newest `retain` by creation time, one per seq.
 */
async function rebuild(
  dev: BlockDevice,
  id: { vdiUuid: string; srUuid: string; maxRecords: number; retain: number },
  nonces: Uint8Array[],
  notes: string[],
  minSeq = 1,
): Promise<Root> {
  const dataEnd = dev.size - (dev.size % BLOCK);
  const capacity = dataEnd - DATA_START;
  const all = await scanRecords(dev, capacity, dev.size - DATA_START, null, minSeq);
  let fingerprint: number | null = null;
  let nonce: Uint8Array | null = null;
  for (const n of nonces) {
    const f = fingerprintOf(n);
    if (all.some((r) => r.fingerprint === f)) {
      fingerprint = f;
      nonce = n;
      break;
    }
  }
  if (fingerprint === null && all.length > 0) {
    const newest = all.reduce((a, b) => (b.entry.createdAt > a.entry.createdAt ? b : a));
    fingerprint = newest.fingerprint;
    nonce = nonceFor(fingerprint);
    notes.push(
      "the ring's nonce was lost with its root: a nonce equivalent for every header check was derived from the records",
    );
  }
  const bySeq = new Map<number, Entry>();
  for (const r of all) {
    if (r.fingerprint !== fingerprint) {
      notes.push(
        `record ${r.entry.seq} at offset ${r.entry.offset} belongs to another ring (an earlier format): left out`,
      );
      continue;
    }
    const had = bySeq.get(r.entry.seq);
    if (had) notes.push(`two records hold seq ${r.entry.seq}: the one created last is kept`);
    if (!had || r.entry.createdAt > had.createdAt) bySeq.set(r.entry.seq, r.entry);
  }
  let entries = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  if (entries.length > id.retain) {
    const keep = new Set(
      entries
        .slice()
        .sort((a, b) => b.createdAt - a.createdAt || b.seq - a.seq)
        .slice(0, id.retain),
    );
    for (const e of entries)
      if (!keep.has(e))
        notes.push(`record ${e.seq} is beyond the retention of ${id.retain}: left out`);
    entries = entries.filter((e) => keep.has(e));
  }
  return {
    generation: 1,
    nonce: nonce ?? new Uint8Array(randomBytes(16)),
    vdiUuid: id.vdiUuid,
    srUuid: id.srUuid,
    deviceSize: dev.size,
    dataEnd,
    maxRecords: id.maxRecords,
    nextSeq: (entries[entries.length - 1]?.seq ?? 0) + 1,
    entries,
  };
}

/** Reads both root copies. */
async function readRoots(dev: BlockDevice) {
  // The used part of a copy: its header and at most MAX_SLOTS entries (the rest is unused).
  const n = HEADER + MAX_SLOTS * ENTRY;
  const bufs = [await dev.read(0, n), await dev.read(ROOT_SIZE, n)] as const;
  const results = [decodeRoot(bufs[0], 0, dev.size), decodeRoot(bufs[1], 1, dev.size)] as const;
  let best: Root | null = null;
  for (const r of results)
    if (r.ok && (!best || r.root.generation > best.generation)) best = r.root;
  return { bufs, results, best };
}

interface Inspection {
  root: Root;
  status: RingStatus;
}

/**
 * The root to use and what is wrong with the one found: the newest valid copy plus every
 * committed record beyond it, or, with both copies unusable, a root rebuilt by a scan.
 * `fullScan` (repair) also scans the whole data area for records beyond a valid root.
 */
async function inspect(
  dev: BlockDevice,
  opts: {
    readOnly: boolean;
    expect?: { vdiUuid?: string; srUuid?: string };
    fullScan?: boolean;
    maxRecords?: number;
    rootsOnly?: boolean;
  },
): Promise<Inspection> {
  if (dev.size < DATA_START) {
    throw new RingError(
      dev.size >= 8 ? 'RING_NOT_FORMATTED' : 'RING_TRUNCATED',
      `device of ${dev.size} bytes is too small to hold a ring`,
    );
  }
  const limit = dev.size - DATA_START;
  const warnings: string[] = [];
  let { bufs, results, best } = await readRoots(dev);
  const unsupported = results.find((r) => !r.ok && r.code === 'RING_VERSION_UNSUPPORTED');
  if (unsupported && !unsupported.ok) {
    // Never fall back past a copy a newer xsmeta wrote: that would roll its backups back.
    throw new RingError('RING_VERSION_UNSUPPORTED', unsupported.message);
  }
  if (best) {
    let used: Root = best;
    let found = opts.rootsOnly ? [] : await findBeyond(dev, used, limit);
    if (found.length > 0 && opts.readOnly) {
      // A backup may be between flushing its record and committing its root: look once more.
      const again = await readRoots(dev);
      if (again.best && again.best.generation > used.generation) {
        ({ bufs, results } = again);
        used = again.best;
        found = await findBeyond(dev, used, limit);
      }
    }
    results.forEach((r, i) => {
      if (!r.ok)
        warnings.push(
          `root copy ${i} is ${r.code === 'RING_NOT_FORMATTED' ? 'blank or its magic damaged' : `damaged (${r.message})`}: using copy ${1 - i} (generation ${used.generation})`,
        );
    });
    if (results[0].ok && results[1].ok) {
      const [a, b] = [results[0].root.generation, results[1].root.generation];
      if (Math.abs(a - b) !== 1)
        warnings.push(
          `the root copies hold generations ${a} and ${b}, not consecutive: one was rolled back or replayed`,
        );
    }
    let root = used;
    if (found.length > 0) {
      warnings.push(
        `record(s) ${found.map((f) => f.seq).join(', ')} were committed but are missing from the root (a damaged, rolled-back or unwritten root): recovered from their own headers`,
      );
      root = merge(used, found);
    }
    if (opts.fullScan) {
      const extra = (
        await scanRecords(dev, root.dataEnd - DATA_START, limit, root.nonce, root.nextSeq)
      ).map((f) => f.entry);
      if (extra.length > 0) {
        warnings.push(
          `record(s) ${extra.map((f) => f.seq).join(', ')} were found beyond the root by a full scan: recovered`,
        );
        root = merge(
          root,
          extra.sort((a, b) => a.seq - b.seq),
        );
      }
    }
    const truncatedTo = used.deviceSize > dev.size ? dev.size : null;
    if (truncatedTo !== null) {
      const lost = root.entries.filter((e) => e.offset + REC_HEADER + e.length > limit);
      warnings.push(
        `the device has ${dev.size} bytes, fewer than the ${used.deviceSize} the ring was made for: ${lost.length ? `record(s) ${lost.map((e) => e.seq).join(', ')} lie beyond its end; ` : ''}the records inside it stay readable, writes are refused`,
      );
    }
    return {
      root,
      status: {
        ok: warnings.length === 0,
        warnings,
        recovered: [
          ...new Set(root.entries.filter((e) => e.seq >= used.nextSeq).map((e) => e.seq)),
        ],
        rebuilt: false,
        repaired: false,
        truncatedTo,
      },
    };
  }
  const failures = results as readonly Failure[];
  const blank = failures.every((f) => f.code === 'RING_NOT_FORMATTED');
  if (blank && !opts.fullScan) {
    if (holdsExtFilesystem(bufs[0])) {
      // Not blank: formatting it would destroy what it holds (an old ext3 backup, say).
      throw new RingError(
        'RING_FOREIGN',
        'the disk holds an ext2/ext3/ext4 filesystem, not a backup ring',
      );
    }
    // Every ring's first record starts at the data area's first block, and no record ever
    // covers it otherwise: no header there means no record was ever written.
    const first = await dev.read(DATA_START, Math.min(BLOCK, dev.size - DATA_START));
    if (dec.decode(first.subarray(0, 8)) !== REC_MAGIC)
      throw new RingError('RING_NOT_FORMATTED', 'the disk holds no xsmeta backup ring');
  }
  const salvaged = [salvageRoot(bufs[0]), salvageRoot(bufs[1])].filter((x) => x !== null);
  const expect = opts.expect ?? {};
  const id =
    salvaged[0] ??
    (expect.vdiUuid && expect.srUuid
      ? { vdiUuid: expect.vdiUuid, srUuid: expect.srUuid, maxRecords: 25, nonce: null }
      : null);
  const what = blank ? 'both root copies are blank' : failures.map((f) => f.message).join('; ');
  if (!id) {
    throw new RingError(
      blank ? 'RING_ROOT_LOST' : 'RING_CORRUPT',
      `${what}, and the ring's identity is unknown: rebuild the root with \`xsmeta repair\``,
    );
  }
  const notes: string[] = [];
  const root = await rebuild(
    dev,
    {
      ...id,
      maxRecords: opts.maxRecords ?? id.maxRecords,
      // Without a copy to say the ring's retention, keep every intact record (nothing lost;
      // the next backup's retention evicts the oldest again).
      retain: opts.maxRecords ?? (salvaged[0] ? id.maxRecords : MAX_SLOTS),
    },
    salvaged.map((s) => s.nonce),
    notes,
  );
  if (root.entries.length === 0 && opts.fullScan && blank) {
    throw new RingError(
      'RING_NOT_FORMATTED',
      'the disk holds no xsmeta root and no xsmeta record: nothing to repair',
    );
  }
  if (root.entries.length === 0 && !opts.fullScan) {
    throw new RingError(
      blank ? 'RING_ROOT_LOST' : 'RING_CORRUPT',
      `${what}, and no intact record was found by a scan: nothing to recover (re-initialise with -i to start afresh)`,
    );
  }
  warnings.push(
    `${what}: the index was rebuilt by scanning the records (${root.entries.length} found); rebuild the root with \`xsmeta repair\``,
    ...notes,
  );
  return {
    root,
    status: {
      ok: false,
      warnings,
      recovered: root.entries.map((e) => e.seq),
      rebuilt: true,
      repaired: false,
      truncatedTo: null,
    },
  };
}

/** Refuses to format over anything that holds a ring, records or a filesystem. */
async function refuseToFormat(dev: BlockDevice): Promise<void> {
  const { bufs } = await readRoots(dev);
  const again = 'only an explicit re-initialisation (xsmeta backup -i, confirmed) may destroy them';
  for (const i of [0, 1] as const) {
    if (dec.decode(bufs[i].subarray(0, 8)) === ROOT_MAGIC)
      throw new RingError(
        'RING_NOT_EMPTY',
        `the disk holds an xsmeta ring (root copy ${i}): ${again}`,
      );
  }
  if (holdsExtFilesystem(bufs[0]))
    throw new RingError(
      'RING_FOREIGN',
      'the disk holds an ext2/ext3/ext4 filesystem, not a backup ring',
    );
  const n = await countHeaders(dev);
  if (n > 0) {
    throw new RingError(
      'RING_NOT_EMPTY',
      `the disk's root area is blank but it holds ${n} xsmeta record header(s): rebuild its root with \`xsmeta repair\` (a dry run first), or ${again}`,
    );
  }
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
    private readonly health: RingStatus,
    private readonly recordCheck: RecordCheck | undefined,
    private readonly keys: RingKeys,
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

  /** What opening found about the root (damage, recovery, truncation); see RingStatus. */
  get status(): RingStatus {
    return { ...this.health, warnings: this.health.warnings.slice() };
  }

  /**
   * Writes an empty ring (both root copies). Refuses (`RING_NOT_EMPTY`, `RING_FOREIGN`) a disk
   * that holds a ring root, any record header or a filesystem, unless `intent` is
   * `'reinitialise'`: the caller's explicit, confirmed decision to destroy what it holds.
   */
  static async format(
    dev: BlockDevice,
    opts: {
      vdiUuid: string;
      srUuid: string;
      maxRecords?: number;
      intent?: 'reinitialise';
      signingKey?: KeyObject;
    },
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
    if (opts.intent !== 'reinitialise') await refuseToFormat(dev);
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
    await writeBothCopies(dev, root);
    return new Ring(dev, root, false, cleanStatus(), undefined, checkKeys(opts));
  }

  /**
   * Opens a ring: the newest root copy that verifies, plus every committed record found beyond
   * it from its own header (crash recovery, and recovery from a damaged or rolled-back copy);
   * with both copies unusable, an index rebuilt by scanning the records (writes then refused
   * with `RING_ROOT_LOST` until `Ring.repair`). A writable open writes a recovered root back.
   * `status` says what was found. `check` is used by verify() on each record's bytes.
   */
  static async open(
    dev: BlockDevice,
    opts: {
      readOnly?: boolean;
      expect?: { vdiUuid?: string; srUuid?: string };
      check?: RecordCheck;
      /**
       * Read-only opens: trust the newest valid root copy and do not look for records committed
       * beyond it. For a device where a read far into the disk costs the whole stream up to
       * there (the remote device): `list` then reads the roots only.
       */
      rootsOnly?: boolean;
    } & RingKeys = {},
  ): Promise<Ring> {
    const readOnly = opts.readOnly ?? dev.readOnly;
    if (opts.rootsOnly && !readOnly)
      throw new RingError('RING_INVALID_ARGUMENT', 'rootsOnly is for read-only opens');
    const { root, status } = await inspect(dev, {
      readOnly,
      rootsOnly: opts.rootsOnly ?? false,
      ...(opts.expect ? { expect: opts.expect } : {}),
    });
    checkIdentity(root, opts.expect);
    const ring = new Ring(dev, root, readOnly, status, opts.check, checkKeys(opts));
    if (!readOnly && !status.ok && !status.rebuilt && status.truncatedTo === null) {
      // Heal: the other copy gets the recovered root (the damaged or stale copy is overwritten).
      await ring.commit(root);
      status.repaired = true;
      status.warnings.push('the recovered root was written back');
    }
    return ring;
  }

  /**
   * Rebuilds the root from the records (`xsmeta repair`): the valid root (if any) plus every
   * committed record beyond it found by a full scan, or, with both copies unusable, the records
   * alone (identity from `expect` when no copy gives it). Writes both copies only with `apply`;
   * otherwise a dry run that reports what it would do.
   */
  static async repair(
    dev: BlockDevice,
    opts: {
      apply: boolean;
      expect?: { vdiUuid?: string; srUuid?: string };
      maxRecords?: number;
    },
  ): Promise<RepairReport> {
    const { root, status } = await inspect(dev, {
      readOnly: true,
      fullScan: true,
      ...(opts.expect ? { expect: opts.expect } : {}),
      ...(opts.maxRecords ? { maxRecords: opts.maxRecords } : {}),
    });
    checkIdentity(root, opts.expect);
    if (status.truncatedTo !== null) {
      throw new RingError(
        'RING_TRUNCATED',
        `the device is shorter than the ring (${status.warnings.at(-1)}): copy the readable backups off before re-initialising`,
      );
    }
    const notes = status.warnings.filter(
      (w) => !w.endsWith('rebuild the root with `xsmeta repair`'),
    );
    let written = false;
    if (opts.apply && !status.ok) {
      if (dev.readOnly) throw new RingError('RING_READ_ONLY', 'cannot repair a read-only device');
      await writeBothCopies(dev, { ...root, generation: root.generation + 1 });
      written = true;
    }
    return {
      records: root.entries.map(info),
      ignored: notes.filter((n) => n.includes('left out')),
      warnings: notes.filter((n) => !n.includes('left out')),
      clean: status.ok,
      written,
    };
  }

  private check(): void {
    if (this.closed) throw new RingError('RING_INVALID_ARGUMENT', 'the ring is closed');
  }

  /** The records, newest first, from the index read at open. */
  list(): RecordInfo[] {
    this.check();
    return this.root.entries.slice().reverse().map(info);
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
    if (this.health.rebuilt) {
      throw new RingError(
        'RING_ROOT_LOST',
        'both root copies of the backup disk are unusable and its records were found by a scan: rebuild the root with `xsmeta repair` before the next backup (re-initialising with -i destroys them)',
      );
    }
    if (this.health.truncatedTo !== null) {
      throw new RingError(
        'RING_TRUNCATED',
        `the device is shorter than the ring was made for (${this.health.truncatedTo} < ${this.root.deviceSize} bytes): no backup is written to it`,
      );
    }
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
    const signer = this.keys.signingKey;
    const need = align(
      REC_HEADER + input.data.length + input.label.length + (signer ? SIG_TRAILER : 0),
    );
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
      inline: true,
      signed: signer !== undefined,
    };
    const at = DATA_START + offset;
    await this.dev.write(at, encodeRecordHeader(entry, this.root.nonce));
    if (input.data.length > 0) await this.dev.write(at + REC_HEADER, input.data);
    if (entry.label.length > 0)
      await this.dev.write(at + REC_HEADER + input.data.length, entry.label);
    if (signer) {
      const digest = createHash('sha256').update(input.data).digest();
      const trailer = new Uint8Array(SIG_TRAILER);
      trailer.set(sign(null, signedMessage(createdAt, digest, entry.label), signer), 0);
      trailer.set(keyId(signer), 64);
      await this.dev.write(at + REC_HEADER + input.data.length + entry.label.length, trailer);
    }
    await this.dev.flush();
    await this.commit({ ...this.root, nextSeq: entry.seq + 1, entries: [...kept, entry] });
    return info(entry);
  }

  private entry(seq: number): Entry {
    const e = this.root.entries.find((x) => x.seq === seq);
    if (!e) throw new RingError('RING_NOT_FOUND', `no backup record with seq ${seq}`);
    return e;
  }

  private async checkHeader(e: Entry): Promise<void> {
    const raw = await this.dev.read(DATA_START + e.offset, REC_HEADER);
    const h = parseRecordHeader(raw);
    if (!h) throw corrupt(`record ${e.seq}: header missing`);
    if (!headerMatches(raw, h.stored, this.root.nonce)) {
      throw corrupt(`record ${e.seq}: header checksum mismatch (stale or damaged block)`);
    }
    if (h.seq !== e.seq)
      throw corrupt(`record ${e.seq}: found record ${h.seq} in its place (stale lap)`);
    if (h.offset !== e.offset)
      throw corrupt(`record ${e.seq}: header written for offset ${h.offset} (misdirected write)`);
    if (
      h.length !== e.length ||
      h.crc !== e.crc ||
      h.labelLength !== (e.inline ? e.label.length : 0) ||
      h.flags !== (e.signed ? REC_SIGNED : 0)
    ) {
      throw corrupt(`record ${e.seq}: header disagrees with the index`);
    }
  }

  /** Checks a signed record's trailer against the verify key (before its last chunk is out). */
  private async checkSignature(e: Entry, key: KeyObject, digest: Uint8Array): Promise<void> {
    const at = DATA_START + e.offset + REC_HEADER + e.length + e.label.length;
    if (at + SIG_TRAILER > this.dev.size) {
      throw new RingError(
        'RING_TRUNCATED',
        `record ${e.seq}: its signature lies beyond the device`,
      );
    }
    const trailer = await this.dev.read(at, SIG_TRAILER);
    const want = keyId(key);
    if (!want.every((b, i) => trailer[64 + i] === b)) {
      throw new RingError(
        'RING_BAD_SIGNATURE',
        `record ${e.seq} is signed by another key (id ${Buffer.from(trailer.subarray(64)).toString('hex')}, not ${Buffer.from(want).toString('hex')}): it is not trusted`,
      );
    }
    const msg = signedMessage(e.createdAt, digest, e.label);
    if (!verifySignature(null, msg, key, trailer.subarray(0, 64))) {
      throw new RingError(
        'RING_BAD_SIGNATURE',
        `record ${e.seq}: its signature does not match its content: it is not trusted`,
      );
    }
  }

  /**
   * After a failed read: true when a newer root, committed meanwhile by a concurrent backup, no
   * longer lists the record (evicted during the read, not damaged).
   */
  private async evictedMeanwhile(seq: number): Promise<boolean> {
    if (this.health.rebuilt) return false;
    const { best } = await readRoots(this.dev);
    return (
      best !== null &&
      best.generation > this.root.generation &&
      !best.entries.some((x) => x.seq === seq)
    );
  }

  /**
   * Streams a record's payload; the last chunk is released only once the checksum matched.
   * Reads under the root read at open; a record that a concurrent backup evicted meanwhile
   * fails with RING_EVICTED rather than as damage.
   */
  async *read(seq: number): AsyncIterable<Uint8Array> {
    this.check();
    const e = this.entry(seq);
    if (DATA_START + e.offset + REC_HEADER + e.length > this.dev.size) {
      throw new RingError(
        'RING_TRUNCATED',
        `record ${seq} lies beyond the end of the device (${this.dev.size} bytes): the device was shortened`,
      );
    }
    const key = this.keys.verifyKey;
    if (key && !e.signed) {
      throw new RingError(
        'RING_UNSIGNED',
        `record ${seq} is not signed, and a verify key is configured: it is not trusted`,
      );
    }
    try {
      await this.checkHeader(e);
      let crc = 0;
      const hash = key ? createHash('sha256') : null;
      let held: Uint8Array | null = null;
      // Read-ahead: READ_AHEAD chunks are in flight while one is checksummed (and consumed).
      const base = DATA_START + e.offset + REC_HEADER;
      let asked = 0;
      const ahead: Promise<Uint8Array>[] = [];
      const fill = (): void => {
        while (ahead.length < READ_AHEAD && asked < e.length) {
          const p = this.dev.read(base + asked, Math.min(READ_CHUNK, e.length - asked));
          p.catch(() => {}); // awaited below; a read left behind by an early stop stays quiet
          ahead.push(p);
          asked += Math.min(READ_CHUNK, e.length - asked);
        }
      };
      fill();
      for (let p = ahead.shift(); p !== undefined; p = ahead.shift()) {
        const chunk = await p;
        fill();
        crc = crc32(chunk, crc);
        hash?.update(chunk);
        if (held) yield held;
        held = chunk;
      }
      if (crc !== e.crc) throw corrupt(`record ${e.seq}: payload checksum mismatch`);
      if (key && hash) await this.checkSignature(e, key, hash.digest());
      if (held) yield held;
    } catch (err) {
      if (
        err instanceof RingError &&
        err.code === 'RING_CORRUPT' &&
        (await this.evictedMeanwhile(seq))
      ) {
        throw new RingError(
          'RING_EVICTED',
          `record ${seq} was evicted by a backup while it was being read`,
          { cause: err },
        );
      }
      throw err;
    }
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

  /**
   * Checks the root (see status) and every record, newest first; each damaged one is named by
   * seq. With a record check (here or given at open), each record's bytes must also pass it.
   */
  async verify(
    onProgress?: (done: number, total: number) => void,
    check: RecordCheck | undefined = this.recordCheck,
  ): Promise<VerifyReport> {
    this.check();
    const records: VerifyReport['records'] = [];
    const list = this.root.entries.slice().reverse();
    let i = 0;
    for (const e of list) {
      try {
        if (check) await check(await this.readAll(e.seq), e.seq);
        else
          for await (const _ of this.read(e.seq)) {
            // read() verifies as it goes
          }
        records.push({ seq: e.seq, ok: true });
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (!(err instanceof RingError) && !(err instanceof Error && typeof code === 'string'))
          throw err;
        if (code === 'RING_EVICTED')
          records.push({ seq: e.seq, ok: true, code, error: 'evicted during read' });
        else records.push({ seq: e.seq, ok: false, code: String(code), error: err.message });
      }
      onProgress?.(++i, list.length);
    }
    const root = this.status;
    return { ok: root.ok && records.every((r) => r.ok), root, records };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.dev.close();
  }
}

/**
 * Optional Ed25519 keys (node:crypto KeyObjects): with `signingKey` every append is signed; with
 * `verifyKey` every read (so verify and restore) refuses an unsigned record (RING_UNSIGNED) or
 * one whose signature does not match (RING_BAD_SIGNATURE). Without keys, nothing changes.
 */
export interface RingKeys {
  signingKey?: KeyObject;
  verifyKey?: KeyObject;
}

function checkKeys(k: RingKeys): RingKeys {
  if (
    k.signingKey &&
    (k.signingKey.type !== 'private' || k.signingKey.asymmetricKeyType !== 'ed25519')
  )
    throw new RingError('RING_INVALID_ARGUMENT', 'the signing key must be an Ed25519 private key');
  if (k.verifyKey && (k.verifyKey.type !== 'public' || k.verifyKey.asymmetricKeyType !== 'ed25519'))
    throw new RingError('RING_INVALID_ARGUMENT', 'the verify key must be an Ed25519 public key');
  return {
    ...(k.signingKey ? { signingKey: k.signingKey } : {}),
    ...(k.verifyKey ? { verifyKey: k.verifyKey } : {}),
  };
}

function info(e: Entry): RecordInfo {
  return { seq: e.seq, createdAt: e.createdAt, size: e.length, label: e.label.slice() };
}

function cleanStatus(): RingStatus {
  return {
    ok: true,
    warnings: [],
    recovered: [],
    rebuilt: false,
    repaired: false,
    truncatedTo: null,
  };
}

function checkIdentity(root: Root, expect: { vdiUuid?: string; srUuid?: string } = {}): void {
  if (
    (expect.vdiUuid && expect.vdiUuid !== root.vdiUuid) ||
    (expect.srUuid && expect.srUuid !== root.srUuid)
  ) {
    throw new RingError(
      'RING_IDENTITY_MISMATCH',
      `the ring belongs to VDI ${root.vdiUuid} on SR ${root.srUuid}, not to the expected ${expect.vdiUuid ?? '-'} on ${expect.srUuid ?? '-'}`,
    );
  }
}

/** Writes copy 0 with generation g - 1 and copy 1 with g (g odd), as format does. */
async function writeBothCopies(dev: BlockDevice, root: Root): Promise<void> {
  const g = root.generation % 2 === 1 ? root.generation : root.generation + 1;
  await dev.write(0, encodeRoot({ ...root, generation: g - 1 }, 0));
  await dev.write(ROOT_SIZE, encodeRoot({ ...root, generation: g }, 1));
  await dev.flush();
}
