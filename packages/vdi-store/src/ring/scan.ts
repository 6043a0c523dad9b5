/**
 * Records found from their own headers (FORMAT.md "Recovery"): one record checked at a place,
 * the records committed beyond a root, a scan of the data area, and a root rebuilt from the
 * records alone when both copies are unusable.
 */
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BlockDevice } from '../device.js';
import { fingerprintOf, headerMatches, isRecMagic, parseRecordHeader } from './codec.js';
import {
  align,
  BLOCK,
  DATA_START,
  type Entry,
  LABEL_MAX,
  READ_CHUNK,
  REC_HEADER,
  REC_SIGNED,
  type Root,
  SCAN_CHUNK,
  SIG_TRAILER,
  span,
} from './layout.js';

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

/** The index entries of records found, as the fingerprint of their header checksums. */
interface Found {
  entry: Entry;
  fingerprint: number;
}

/**
 * Reads and checks the record whose header sits at data offset `off`: magic, its own offset,
 * bounds, seq at least `minSeq`, header checksum under `nonce` (when null: any nonce, the
 * fingerprint says which), then the payload and label checksums, reading the payload in chunks.
 * Null when any check fails. `limit` is how many data bytes the device holds. `uncached`: the
 * header is read through the device's `readUncached` when it has one.
 */
async function recordAt(
  dev: BlockDevice,
  capacity: number,
  limit: number,
  off: number,
  nonce: Uint8Array | null,
  minSeq: number,
  uncached = false,
): Promise<Found | null> {
  if (off < 0 || off % BLOCK !== 0 || off + REC_HEADER > Math.min(limit, capacity)) return null;
  const raw =
    uncached && dev.readUncached
      ? await dev.readUncached(DATA_START + off, REC_HEADER)
      : await dev.read(DATA_START + off, REC_HEADER);
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
export async function findBeyond(dev: BlockDevice, root: Root, limit: number): Promise<Entry[]> {
  const capacity = root.dataEnd - DATA_START;
  const found: Entry[] = [];
  const tried = new Set<number>();
  let frontier = [0, ...root.entries.flatMap((e) => [e.offset, e.offset + span(e)])];
  while (frontier.length > 0) {
    // The places of one round are read at once (a cold disk answers them together).
    const places = [...new Set(frontier)].filter((off) => !tried.has(off));
    for (const off of places) tried.add(off);
    const records = await Promise.all(
      // Read past the page cache where the device can: a cached header at the start of every
      // record would slow a front-to-back read of the disk after opening (verify).
      places.map((off) => recordAt(dev, capacity, limit, off, root.nonce, root.nextSeq, true)),
    );
    const next: number[] = [];
    for (const r of records) {
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
export async function scanRecords(
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

/** How many block starts of the data area hold a record header's magic (damaged or not). */
export async function countHeaders(dev: BlockDevice): Promise<number> {
  let n = 0;
  for (let off = DATA_START; off + BLOCK <= dev.size; off += SCAN_CHUNK) {
    const chunk = await dev.read(off, Math.min(SCAN_CHUNK, dev.size - off));
    for (let i = 0; i + 8 <= chunk.length; i += BLOCK) if (isRecMagic(chunk, i)) n++;
  }
  return n;
}

/**
 * Builds a root from the records alone, for when both copies are unusable. Keeps the records
 * of one ring: those whose header checksums agree with a nonce salvaged from a damaged copy, or,
 * when none does (the nonce is lost), the fingerprint of the newest record; within those, the
 * newest `retain` by creation time, one per seq.
 */
export async function rebuild(
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
