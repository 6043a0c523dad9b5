/**
 * Reading one record (FORMAT.md "Record", "Readers during an append"): its header checked
 * against the index entry, its payload streamed with reads in flight ahead of the checksum, its
 * signature checked before the last chunk is released, and eviction told apart from damage.
 */
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BlockDevice } from '../device.js';
import { RingError } from '../errors.js';
import { headerMatches, parseRecordHeader } from './codec.js';
import {
  corrupt,
  DATA_START,
  type Entry,
  READ_AHEAD,
  READ_CHUNK,
  REC_HEADER,
  REC_SIGNED,
  type Root,
} from './layout.js';
import { readRoots } from './root.js';
import { checkSignature, type RingKeys } from './signing.js';

/** What reading a record needs of an open ring, as it is at the time of the read. */
export interface RingView {
  readonly dev: BlockDevice;
  /** The root in use (a writable ring replaces it at each commit). */
  readonly root: Root;
  /** The index was rebuilt by a scan: there is no root to read again. */
  readonly rebuilt: boolean;
  readonly keys: RingKeys;
}

async function checkHeader(view: RingView, e: Entry): Promise<void> {
  const raw = await view.dev.read(DATA_START + e.offset, REC_HEADER);
  const h = parseRecordHeader(raw);
  if (!h) throw corrupt(`record ${e.seq}: header missing`);
  if (!headerMatches(raw, h.stored, view.root.nonce)) {
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

/**
 * After a failed read: true when a newer root, committed meanwhile by a concurrent backup, no
 * longer lists the record (evicted during the read, not damaged).
 */
async function evictedMeanwhile(view: RingView, seq: number): Promise<boolean> {
  if (view.rebuilt) return false;
  const { best } = await readRoots(view.dev);
  return (
    best !== null &&
    best.generation > view.root.generation &&
    !best.entries.some((x) => x.seq === seq)
  );
}

/**
 * Streams a record's payload; the last chunk is released only once the checksum matched.
 * Reads under the root read at open; a record that a concurrent backup evicted meanwhile
 * fails with RING_EVICTED rather than as damage.
 */
export async function* readRecord(view: RingView, e: Entry): AsyncIterable<Uint8Array> {
  const { seq } = e;
  if (DATA_START + e.offset + REC_HEADER + e.length > view.dev.size) {
    throw new RingError(
      'RING_TRUNCATED',
      `record ${seq} lies beyond the end of the device (${view.dev.size} bytes): the device was shortened`,
    );
  }
  const key = view.keys.verifyKey;
  if (key && !e.signed) {
    throw new RingError(
      'RING_UNSIGNED',
      `record ${seq} is not signed, and a verify key is configured: it is not trusted`,
    );
  }
  try {
    await checkHeader(view, e);
    let crc = 0;
    const hash = key ? createHash('sha256') : null;
    let held: Uint8Array | null = null;
    // Read-ahead: READ_AHEAD chunks are in flight while one is checksummed (and consumed).
    const base = DATA_START + e.offset + REC_HEADER;
    let asked = 0;
    const ahead: Promise<Uint8Array>[] = [];
    const fill = (): void => {
      while (ahead.length < READ_AHEAD && asked < e.length) {
        const p = view.dev.read(base + asked, Math.min(READ_CHUNK, e.length - asked));
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
    if (key && hash) await checkSignature(view.dev, e, key, hash.digest());
    if (held) yield held;
  } catch (err) {
    if (
      err instanceof RingError &&
      err.code === 'RING_CORRUPT' &&
      (await evictedMeanwhile(view, seq))
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

/** The chunks of a read joined into one buffer. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of chunks) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of parts) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
