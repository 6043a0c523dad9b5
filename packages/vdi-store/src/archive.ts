// Over 400 lines on purpose: the writer and the streaming reader of one frame format, whose
// limits and checks must stay side by side so that what is written is what is read.
import { createHash } from 'node:crypto';
import type { TransformOptions } from 'node:stream';
import {
  type BrotliOptions,
  constants,
  createBrotliCompress,
  createBrotliDecompress,
} from 'node:zlib';
import { ArchiveError } from './errors.js';

/**
 * A generic archive of named parts: a 8-byte magic, then one Brotli stream (large window, so
 * parts that resemble each other, like one VM's metadata and the next, compress together) of
 * frames: 'P' name, 'C' chunks, 'E' size + sha256 per part, and 'Z' part count at the end.
 */
const MAGIC = new TextEncoder().encode('XSMARC\u0001\u0001');
const enc = new TextEncoder();
/**
 * Bytes the compressor may hold before `write` waits for it. Brotli runs on the thread pool:
 * with the stream's default (16 KiB) every batch waited until it was compressed, so the
 * caller's work (building the next parts) and the compression took turns instead of running
 * at once. Bounded, so memory does not grow with the record.
 */
const WRITE_AHEAD = 4 * 1024 * 1024;
const dec = new TextDecoder('utf-8', { fatal: true });

export interface ArchivePart {
  name: string;
  data: Uint8Array | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

export interface ArchiveSummary {
  bytes: Uint8Array;
  rawBytes: number;
  storedBytes: number;
  parts: { name: string; rawBytes: number; sha256: string }[];
}

export interface ArchiveLimits {
  /** Parts in one archive. */
  maxParts: number;
  /** Bytes of one part (what a reader holds in memory at once). */
  maxPartBytes: number;
  /** Bytes the compressed stream expands to (parts plus framing). */
  maxTotalBytes: number;
  /** Expansion: at most `maxExpansionRatio` × stored bytes + `expansionSlackBytes`. */
  maxExpansionRatio: number;
  expansionSlackBytes: number;
}

/**
 * The one set of limits of a backup record, in one place: writeArchive refuses to produce an
 * archive beyond them (before anything is committed), and readArchive / scanArchive (restore,
 * verify) refuse one beyond them, so a record written is a record that reads. Real metadata
 * compresses ~20×; 1000× leaves room for pools of near-identical VMs and stops a forged record
 * (a few hundred KiB of Brotli expanding to GiB) after at most ~1000× its size.
 */
export const RECORD_LIMITS: Readonly<ArchiveLimits> = Object.freeze({
  maxParts: 100_000,
  maxPartBytes: 256 * 1024 * 1024,
  maxTotalBytes: 2 * 1024 * 1024 * 1024,
  maxExpansionRatio: 1000,
  expansionSlackBytes: 64 * 1024 * 1024,
});

/** How many bytes an archive of `stored` bytes may expand to under `lim`. */
function expansionBound(stored: number, lim: ArchiveLimits): number {
  return Math.min(lim.maxTotalBytes, stored * lim.maxExpansionRatio + lim.expansionSlackBytes);
}

const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/**
 * Packs parts as they arrive; only the compressed output is kept in memory. Refuses
 * (ARCHIVE_LIMIT) an archive beyond `limits` (default RECORD_LIMITS), which no reader would read.
 */
export async function writeArchive(
  parts: AsyncIterable<ArchivePart> | Iterable<ArchivePart>,
  opts: { maxStoredBytes?: number; quality?: number; limits?: Partial<ArchiveLimits> } = {},
): Promise<ArchiveSummary> {
  const max = opts.maxStoredBytes ?? Number.POSITIVE_INFINITY;
  const lim: ArchiveLimits = { ...RECORD_LIMITS, ...opts.limits };
  const refuse = (what: string) =>
    new ArchiveError(
      'ARCHIVE_LIMIT',
      `${what}: no reader would restore it, so it is not written (the backup disk is unchanged)`,
    );
  // zlib hands its options to the Transform it is (lib/zlib.js), stream options included,
  // though @types/node's BrotliOptions does not list them.
  const zopts: BrotliOptions & TransformOptions = {
    writableHighWaterMark: WRITE_AHEAD,
    params: {
      [constants.BROTLI_PARAM_QUALITY]: opts.quality ?? 1,
      [constants.BROTLI_PARAM_LGWIN]: 22,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
    },
  };
  const z = createBrotliCompress(zopts);
  const out: Buffer[] = [Buffer.from(MAGIC)];
  let stored = MAGIC.length;
  let failure: Error | null = null;
  z.on('data', (c: Buffer) => {
    out.push(c);
    stored += c.length;
    if (stored > max && !failure) {
      failure = new ArchiveError(
        'ARCHIVE_TOO_LARGE',
        `the compressed backup exceeds ${max} bytes, the room there is`,
      );
      z.destroy(failure);
    }
  });
  const ended = new Promise<void>((resolve, reject) => {
    z.on('end', resolve);
    z.on('error', (e) => reject(failure ?? e));
  });
  ended.catch(() => {});
  // Frames are small: batch them so the compressor sees few, large writes.
  let batch: Uint8Array[] = [];
  let batched = 0;
  const drain = async () => {
    if (batched === 0) return;
    const b = Buffer.concat(batch, batched);
    batch = [];
    batched = 0;
    if (failure) throw failure;
    if (!z.write(b)) {
      // A destroyed stream never drains: wake up on close too, then report why.
      await new Promise<void>((r) => {
        const done = () => {
          z.off('drain', done);
          z.off('close', done);
          r();
        };
        z.on('drain', done);
        z.on('close', done);
      });
    }
    if (failure) throw failure;
  };
  let expanded = 0;
  const push = async (b: Uint8Array) => {
    batch.push(b);
    batched += b.length;
    expanded += b.length;
    if (expanded > lim.maxTotalBytes)
      throw refuse(`the backup expands to more than ${MiB(lim.maxTotalBytes)}`);
    if (batched >= 256 * 1024) await drain();
  };
  const summary: ArchiveSummary['parts'] = [];
  let raw = 0;
  try {
    await push(MAGIC);
    for await (const part of parts) {
      if (summary.length >= lim.maxParts)
        throw refuse(`the backup holds more than ${lim.maxParts} parts`);
      const name = enc.encode(part.name);
      if (name.length === 0 || name.length > 1024) {
        throw new ArchiveError('ARCHIVE_LIMIT', `bad part name ${JSON.stringify(part.name)}`);
      }
      await push(Uint8Array.of(0x50, name.length & 0xff, name.length >> 8));
      await push(name);
      const hash = createHash('sha256');
      let size = 0;
      const data = part.data instanceof Uint8Array ? [part.data] : part.data;
      for await (const chunk of data) {
        if (chunk.length === 0) continue;
        hash.update(chunk);
        size += chunk.length;
        if (size > lim.maxPartBytes)
          throw refuse(`part ${part.name} is larger than ${MiB(lim.maxPartBytes)}`);
        await push(Uint8Array.of(0x43));
        await push(u32(chunk.length));
        await push(chunk);
      }
      const sha = hash.digest();
      const tail = new Uint8Array(1 + 8 + 32);
      tail[0] = 0x45;
      new DataView(tail.buffer).setBigUint64(1, BigInt(size), true);
      tail.set(sha, 9);
      await push(tail);
      summary.push({ name: part.name, rawBytes: size, sha256: sha.toString('hex') });
      raw += size;
    }
    await push(Uint8Array.of(0x5a));
    await push(u32(summary.length));
    await drain();
    z.end();
    await ended;
  } catch (e) {
    z.destroy();
    throw failure ?? e;
  }
  if (failure) throw failure;
  if (expanded > expansionBound(stored, lim)) {
    throw refuse(
      `the backup's ${stored} stored bytes expand to ${expanded}, more than ${lim.maxExpansionRatio}× (+${MiB(lim.expansionSlackBytes)})`,
    );
  }
  const bytes = new Uint8Array(Buffer.concat(out));
  return { bytes, rawBytes: raw, storedBytes: bytes.length, parts: summary };
}

async function* inflate(bytes: Uint8Array, maxTotal: number, why: string): AsyncIterable<Buffer> {
  const z = createBrotliDecompress();
  const queue: Buffer[] = [];
  let done = false;
  let error: Error | null = null;
  let wake: (() => void) | null = null;
  let total = 0;
  const notify = () => {
    wake?.();
    wake = null;
  };
  z.on('data', (c: Buffer) => {
    total += c.length;
    if (total > maxTotal) {
      error = new ArchiveError('ARCHIVE_LIMIT', `archive expands past ${maxTotal} bytes (${why})`);
      z.destroy();
    } else {
      queue.push(c);
      if (queue.length > 16) z.pause();
    }
    notify();
  });
  z.on('end', () => {
    done = true;
    notify();
  });
  z.on('error', (e) => {
    error ??= new ArchiveError('ARCHIVE_CORRUPT', `archive stream is damaged: ${e.message}`);
    notify();
  });
  z.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  try {
    for (;;) {
      if (queue.length > 0) {
        yield queue.shift()!;
        if (queue.length < 4) z.resume();
        continue;
      }
      if (error) throw error;
      if (done) return;
      await new Promise<void>((r) => {
        wake = r;
      });
    }
  } finally {
    z.destroy();
  }
}

/** A pull-based reader over a chunk stream that hands out exact byte counts. */
class Cursor {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  async take(n: number): Promise<Buffer> {
    if (this.buf.length < n) {
      // Gather whole chunks and join once: joining on every chunk is quadratic in n.
      const chunks = [this.buf];
      let have = this.buf.length;
      while (have < n) {
        const r = await this.it.next();
        if (r.done) throw new ArchiveError('ARCHIVE_CORRUPT', 'archive ends early');
        chunks.push(r.value);
        have += r.value.length;
      }
      this.buf = Buffer.concat(chunks, have);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /**
   * The next `n` bytes as views of the chunks they lie in (no copy, no join): what a reader
   * that hashes or collects them needs, without a new buffer for every frame.
   */
  async *pieces(n: number): AsyncIterable<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) {
        const r = await this.it.next();
        if (r.done) throw new ArchiveError('ARCHIVE_CORRUPT', 'archive ends early');
        this.buf = r.value;
        continue;
      }
      const c = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(c.length);
      left -= c.length;
      yield c;
    }
  }

  async atEnd(): Promise<boolean> {
    if (this.buf.length > 0) return false;
    const r = await this.it.next();
    if (r.done) return true;
    this.buf = r.value;
    return this.buf.length === 0 ? this.atEnd() : false;
  }
}

export interface ReadOptions extends Partial<ArchiveLimits> {
  /**
   * Which parts to hand out with their bytes. The others are decoded and checked all the
   * same (size, sha256, the limits) but not held: each is yielded with empty `data`, so memory
   * stays at one decompressed chunk while the reader passes over them (a restore passes over
   * the pool database and the VMs it does not import). Default: every part.
   */
  keep?: ((name: string) => boolean) | undefined;
}

/**
 * Unpacks parts one by one, checking each part's size and sha256; bounded by `limits` (default
 * RECORD_LIMITS, the writer's): memory by the largest part kept, time by the expansion bound.
 */
export function readArchive(
  bytes: Uint8Array,
  opts: ReadOptions = {},
): AsyncIterable<{ name: string; data: Uint8Array; sha256: string }> {
  const { keep, ...limits } = opts;
  return unpack(bytes, limits, keep ?? true);
}

/**
 * Decodes and checks every part as readArchive does, keeping none: memory stays at one
 * decompressed chunk whatever the parts' sizes (verify). Yields each part's name, size and sha256.
 */
export async function* scanArchive(
  bytes: Uint8Array,
  limits: Partial<ArchiveLimits> = {},
): AsyncIterable<{ name: string; rawBytes: number; sha256: string }> {
  for await (const p of unpack(bytes, limits, false))
    yield { name: p.name, rawBytes: p.size, sha256: p.sha256 };
}

async function* unpack(
  bytes: Uint8Array,
  limits: Partial<ArchiveLimits>,
  keep: boolean | ((name: string) => boolean),
): AsyncIterable<{ name: string; data: Uint8Array; sha256: string; size: number }> {
  const lim = { ...RECORD_LIMITS, ...limits };
  if (bytes.length < MAGIC.length || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new ArchiveError('ARCHIVE_CORRUPT', 'not an xsmeta archive (bad magic)');
  }
  const bound = expansionBound(bytes.length, lim);
  const cur = new Cursor(
    inflate(
      bytes.subarray(MAGIC.length),
      bound,
      bound < lim.maxTotalBytes
        ? `more than ${lim.maxExpansionRatio}× its ${bytes.length} stored bytes: a forged or damaged record`
        : 'the limit every xsmeta reader and writer applies',
    )[Symbol.asyncIterator](),
  );
  const inner = await cur.take(MAGIC.length);
  if (!MAGIC.every((b, i) => inner[i] === b))
    throw new ArchiveError('ARCHIVE_CORRUPT', 'bad inner magic');
  let count = 0;
  for (;;) {
    const tag = (await cur.take(1))[0];
    if (tag === 0x5a) {
      const n = (await cur.take(4)).readUInt32LE(0);
      if (n !== count)
        throw new ArchiveError('ARCHIVE_CORRUPT', `archive says ${n} parts, holds ${count}`);
      if (!(await cur.atEnd()))
        throw new ArchiveError('ARCHIVE_CORRUPT', 'bytes after the end of the archive');
      return;
    }
    if (tag !== 0x50) throw new ArchiveError('ARCHIVE_CORRUPT', `unexpected frame ${tag}`);
    if (++count > lim.maxParts)
      throw new ArchiveError('ARCHIVE_LIMIT', `more than ${lim.maxParts} parts`);
    const nl = (await cur.take(2)).readUInt16LE(0);
    if (nl === 0 || nl > 1024) throw new ArchiveError('ARCHIVE_CORRUPT', 'bad part name length');
    let name: string;
    try {
      name = dec.decode(await cur.take(nl));
    } catch {
      throw new ArchiveError('ARCHIVE_CORRUPT', 'part name is not UTF-8');
    }
    const retain = typeof keep === 'function' ? keep(name) : keep;
    const chunks: Buffer[] = [];
    let size = 0;
    const hash = createHash('sha256');
    for (;;) {
      const t = (await cur.take(1))[0];
      if (t === 0x43) {
        const n = (await cur.take(4)).readUInt32LE(0);
        if (size + n > lim.maxPartBytes) {
          throw new ArchiveError(
            'ARCHIVE_LIMIT',
            `part ${name} is larger than ${lim.maxPartBytes} bytes`,
          );
        }
        // Views of the inflated chunks, never joined here: a part not retained is hashed and
        // dropped without a copy; one retained is copied once, by the concat at its end.
        for await (const c of cur.pieces(n)) {
          hash.update(c);
          if (retain) chunks.push(c);
        }
        size += n;
      } else if (t === 0x45) {
        const tail = await cur.take(40);
        const declared = Number(tail.readBigUInt64LE(0));
        const sha = hash.digest();
        if (declared !== size || !sha.equals(tail.subarray(8, 40))) {
          throw new ArchiveError('ARCHIVE_CORRUPT', `part ${name} fails its checksum`);
        }
        const joined = retain ? Buffer.concat(chunks, size) : null;
        yield {
          name,
          data: joined
            ? new Uint8Array(joined.buffer, joined.byteOffset, joined.byteLength)
            : new Uint8Array(0),
          sha256: sha.toString('hex'),
          size,
        };
        break;
      } else {
        throw new ArchiveError('ARCHIVE_CORRUPT', `unexpected frame ${t} in part ${name}`);
      }
    }
  }
}
