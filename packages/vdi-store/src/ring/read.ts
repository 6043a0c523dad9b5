/**
 * Reading one record (FORMAT.md "Record", "Readers during an append"): the checks a reader makes
 * (header against the index entry, payload checksum, signature), in the order its bytes arrive,
 * shared by `read` and `verify`; the payload streamed with reads in flight ahead of the checksum,
 * the last chunk released only once every check held; eviction told apart from damage.
 */
import { createHash, type Hash, type KeyObject } from 'node:crypto';
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
  SIG_TRAILER,
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

/**
 * The checks a reader makes on one record, fed its bytes in order: `header` (its 64 bytes),
 * `payload` (every chunk), then `end` (the payload's checksum, then, with a verify key, the
 * signature trailer). Each throws the record's error. Constructing one refuses, before any
 * read, a record beyond the end of the device and, with a verify key, an unsigned one.
 */
export class RecordChecks {
  private crc = 0;
  private readonly hash: Hash | null;
  readonly key: KeyObject | undefined;
  /** Device offset of the record's header. */
  readonly at: number;
  /** Device offset of the signature trailer: read and checked only with a verify key. */
  readonly trailerAt: number;

  constructor(
    private readonly view: RingView,
    readonly e: Entry,
  ) {
    const size = view.dev.size;
    this.at = DATA_START + e.offset;
    if (this.at + REC_HEADER + e.length > size) {
      throw new RingError(
        'RING_TRUNCATED',
        `record ${e.seq} lies beyond the end of the device (${size} bytes): the device was shortened`,
      );
    }
    this.key = view.keys.verifyKey;
    if (this.key && !e.signed) {
      throw new RingError(
        'RING_UNSIGNED',
        `record ${e.seq} is not signed, and a verify key is configured: it is not trusted`,
      );
    }
    this.hash = this.key ? createHash('sha256') : null;
    this.trailerAt = this.at + REC_HEADER + e.length + e.label.length;
  }

  /** The trailer lies inside the device (else `end` fails RING_TRUNCATED when it is needed). */
  get trailerInside(): boolean {
    return this.trailerAt + SIG_TRAILER <= this.view.dev.size;
  }

  header(raw: Uint8Array): void {
    const e = this.e;
    const h = parseRecordHeader(raw);
    if (!h) throw corrupt(`record ${e.seq}: header missing`);
    if (!headerMatches(raw, h.stored, this.view.root.nonce)) {
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

  payload(chunk: Uint8Array): void {
    this.crc = crc32(chunk, this.crc);
    this.hash?.update(chunk);
  }

  /**
   * After the whole payload: its checksum, then, with a verify key, the signature. `trailer`
   * gives the trailer's bytes when the key asks for them (read lazily: only a record whose
   * checksum held gets its trailer read).
   */
  async end(trailer: () => Promise<Uint8Array>): Promise<void> {
    const e = this.e;
    if (this.crc !== e.crc) throw corrupt(`record ${e.seq}: payload checksum mismatch`);
    if (!this.key || !this.hash) return;
    if (!this.trailerInside) {
      throw new RingError(
        'RING_TRUNCATED',
        `record ${e.seq}: its signature lies beyond the device`,
      );
    }
    checkSignature(e, this.key, this.hash.digest(), await trailer());
  }

  /**
   * A failure of this record as the reader reports it: RING_CORRUPT becomes RING_EVICTED when a
   * newer root, committed meanwhile by a concurrent backup, no longer lists the record.
   */
  async explain(err: unknown): Promise<unknown> {
    if (!(err instanceof RingError) || err.code !== 'RING_CORRUPT' || this.view.rebuilt) return err;
    const { best } = await readRoots(this.view.dev);
    const seq = this.e.seq;
    if (
      best !== null &&
      best.generation > this.view.root.generation &&
      !best.entries.some((x) => x.seq === seq)
    ) {
      return new RingError(
        'RING_EVICTED',
        `record ${seq} was evicted by a backup while it was being read`,
        { cause: err },
      );
    }
    return err;
  }
}

/**
 * Streams a record's payload; the last chunk is released only once the checksum matched.
 * Reads under the root read at open; a record that a concurrent backup evicted meanwhile
 * fails with RING_EVICTED rather than as damage.
 */
export async function* readRecord(view: RingView, e: Entry): AsyncIterable<Uint8Array> {
  const checks = new RecordChecks(view, e);
  const dev = view.dev;
  try {
    checks.header(await dev.read(checks.at, REC_HEADER));
    let held: Uint8Array | null = null;
    // Read-ahead: READ_AHEAD chunks are in flight while one is checksummed (and consumed).
    const base = checks.at + REC_HEADER;
    let asked = 0;
    const ahead: Promise<Uint8Array>[] = [];
    const fill = (): void => {
      while (ahead.length < READ_AHEAD && asked < e.length) {
        const p = dev.read(base + asked, Math.min(READ_CHUNK, e.length - asked));
        p.catch(() => {}); // awaited below; a read left behind by an early stop stays quiet
        ahead.push(p);
        asked += Math.min(READ_CHUNK, e.length - asked);
      }
    };
    fill();
    for (let p = ahead.shift(); p !== undefined; p = ahead.shift()) {
      const chunk = await p;
      fill();
      checks.payload(chunk);
      if (held) yield held;
      held = chunk;
    }
    await checks.end(() => dev.read(checks.trailerAt, SIG_TRAILER));
    if (held) yield held;
  } catch (err) {
    throw await checks.explain(err);
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
