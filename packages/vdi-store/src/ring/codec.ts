/**
 * Byte codecs of the ring (FORMAT.md): a root copy (encode, decode with every number checked
 * against the geometry, salvage of a damaged one) and a record header (encode, parse, checksum).
 */
import { crc32 } from 'node:zlib';
import {
  BLOCK,
  DATA_START,
  dec,
  ENTRY,
  type Entry,
  enc,
  FLAG_LABEL_IN_RECORD,
  FLAG_SIGNED,
  HEADER,
  LABEL_MAX,
  MAX_SLOTS,
  REC_HEADER,
  REC_MAGIC,
  REC_SIGNED,
  RING_COMPAT_VERSION,
  RING_FORMAT_VERSION,
  ROOT_MAGIC,
  type Root,
  span,
  UUID,
} from './layout.js';

export function encodeRoot(root: Root, index: 0 | 1): Uint8Array {
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
export function holdsExtFilesystem(head: Uint8Array): boolean {
  return head.length >= 1082 && head[1080] === 0x53 && head[1081] === 0xef;
}

export type RootResult = { ok: true; root: Root } | { ok: false; code: string; message: string };

/** Parses one root copy; every number is checked against the geometry before it is used. */
export function decodeRoot(buf: Uint8Array, index: 0 | 1, deviceSize: number): RootResult {
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

export type Failure = Extract<RootResult, { ok: false }>;

export function encodeRecordHeader(e: Entry, nonce: Uint8Array): Uint8Array {
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

export interface RecordHeader {
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
export function parseRecordHeader(h: Uint8Array): RecordHeader | null {
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

export const headerMatches = (h: Uint8Array, stored: number, nonce: Uint8Array) =>
  crc32(nonce, crc32(h.subarray(0, 60))) === stored;

/** The identity, nonce and limits of a root copy whose checks failed, if its fields look sane. */
export function salvageRoot(buf: Uint8Array): {
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

const REC_MAGIC_BYTES = enc.encode(REC_MAGIC);

export function isRecMagic(buf: Uint8Array, at: number): boolean {
  for (let k = 0; k < 8; k++) if (buf[at + k] !== REC_MAGIC_BYTES[k]) return false;
  return true;
}

export const fingerprintOf = (nonce: Uint8Array) =>
  (crc32(nonce, crc32(new Uint8Array(60))) ^ crc32(new Uint8Array(76))) >>> 0;
