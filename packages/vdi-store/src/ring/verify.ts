/**
 * `verify` (FORMAT.md "Record"): every record checked as a reader checks it (the same
 * RecordChecks: header, payload checksum, signature), then by the caller's record check; each
 * failure named by seq, a record evicted by a concurrent backup told apart from damage.
 *
 * The records are read in the order they lie on the disk, as one stream of reads of up to
 * VERIFY_CHUNK bytes with VERIFY_AHEAD of them in flight across record boundaries: a record's
 * header comes in the same read as the start of its payload (no read of its own), and the disk
 * is read front to back, as a plain sequential read would.
 */
import { RingError } from '../errors.js';
import { READ_CHUNK, REC_HEADER, SIG_TRAILER } from './layout.js';
import { RecordChecks, type RingView } from './read.js';
import type { RecordCheck, VerifyReport } from './types.js';

/** Bytes of one read (the size at which sequential reads of a cold disk were fastest here). */
const VERIFY_CHUNK = READ_CHUNK;
/** Reads kept in flight while one is checked. */
const VERIFY_AHEAD = 4;

type Outcome = VerifyReport['records'][number];

/** One record to read: its checks, how many of its bytes are read, what is gathered. */
interface Job {
  checks: RecordChecks;
  /** Header and payload, then, with a verify key, label and signature trailer. */
  length: number;
  /** The payload, gathered for the record check from the record's first read on. */
  data: Uint8Array | null;
  /** The signature trailer, gathered when a verify key asks for it. */
  trailer: Uint8Array | null;
  done: boolean;
}

/** The outcome of a record that failed; an error that is no record's failure is thrown. */
function failed(seq: number, err: unknown): Outcome {
  const code = (err as { code?: unknown }).code;
  if (!(err instanceof RingError) && !(err instanceof Error && typeof code === 'string')) throw err;
  if (code === 'RING_EVICTED') return { seq, ok: true, code, error: 'evicted during read' };
  return { seq, ok: false, code: String(code), error: err.message };
}

/** Feeds the bytes of `job` at record offset `rel` to its checks, and gathers what it keeps. */
function consume(job: Job, rel: number, chunk: Uint8Array): void {
  const { checks } = job;
  if (rel === 0) checks.header(chunk.subarray(0, REC_HEADER));
  const end = rel + chunk.length;
  const from = Math.max(rel, REC_HEADER);
  const to = Math.min(end, REC_HEADER + checks.e.length);
  if (from < to) {
    const part = chunk.subarray(from - rel, to - rel);
    checks.payload(part);
    job.data?.set(part, from - REC_HEADER);
  }
  if (job.trailer) {
    const t = checks.trailerAt - checks.at;
    const a = Math.max(rel, t);
    const b = Math.min(end, t + SIG_TRAILER);
    if (a < b) job.trailer.set(chunk.subarray(a - rel, b - rel), a - t);
  }
}

/** Reads and checks every record of the view's root; the outcomes newest first. */
export async function verifyRecords(
  view: RingView,
  onProgress: ((done: number, total: number) => void) | undefined,
  check: RecordCheck | undefined,
): Promise<VerifyReport['records']> {
  const list = view.root.entries.slice().reverse();
  const outcomes = new Map<number, Outcome>();
  const settle = (o: Outcome): void => {
    outcomes.set(o.seq, o);
    onProgress?.(outcomes.size, list.length);
  };
  const jobs: Job[] = [];
  for (const e of list.slice().sort((a, b) => a.offset - b.offset)) {
    let checks: RecordChecks;
    try {
      checks = new RecordChecks(view, e); // refuses a record beyond the device, or unsigned
    } catch (err) {
      settle(failed(e.seq, err));
      continue;
    }
    const withTrailer = checks.key !== undefined && checks.trailerInside;
    jobs.push({
      checks,
      length: withTrailer ? checks.trailerAt + SIG_TRAILER - checks.at : REC_HEADER + e.length,
      data: null,
      trailer: withTrailer ? new Uint8Array(SIG_TRAILER) : null,
      done: false,
    });
  }

  const queue: { job: Job; rel: number; bytes: Promise<Uint8Array> }[] = [];
  let next = 0; // the job whose bytes are asked for next
  let asked = 0; // how many of them
  // With a device that reads into a given buffer, the reads go through VERIFY_AHEAD + 1 buffers
  // in turn: a buffer is asked for again only after the read that used it was consumed (the
  // read asked for after each await is VERIFY_AHEAD places ahead of the one being consumed).
  const dev = view.dev;
  const largest = Math.min(VERIFY_CHUNK, Math.max(0, ...jobs.map((j) => j.length)));
  const pool = dev.readInto
    ? Array.from({ length: VERIFY_AHEAD + 1 }, () => new Uint8Array(largest))
    : null;
  let turn = 0;
  const read = (offset: number, n: number): Promise<Uint8Array> => {
    if (!pool || !dev.readInto) return dev.read(offset, n);
    const buf = pool[turn++ % pool.length]!.subarray(0, n);
    return dev.readInto(offset, buf).then(() => buf);
  };
  const fill = (): void => {
    while (queue.length < VERIFY_AHEAD && next < jobs.length) {
      const job = jobs[next]!;
      if (job.done || asked >= job.length) {
        next++;
        asked = 0;
        continue;
      }
      const n = Math.min(VERIFY_CHUNK, job.length - asked);
      const bytes = read(job.checks.at + asked, n);
      bytes.catch(() => {}); // awaited below; one left behind by a failure stays quiet
      queue.push({ job, rel: asked, bytes });
      asked += n;
    }
  };
  fill();
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const { job, rel } = p;
    const { e } = job.checks;
    let last = false;
    try {
      const chunk = await p.bytes;
      fill();
      if (job.done) continue;
      if (rel === 0 && check) job.data = new Uint8Array(e.length);
      consume(job, rel, chunk);
      last = rel + chunk.length === job.length;
      if (last) {
        const trailer = job.trailer;
        await job.checks.end(async () => trailer ?? new Uint8Array(0));
      }
    } catch (err) {
      job.done = true;
      job.data = null;
      settle(failed(e.seq, await job.checks.explain(err)));
      fill();
      continue;
    }
    if (!last) continue;
    job.done = true;
    const data = job.data;
    job.data = null;
    try {
      if (check && data) await check(data, e.seq);
      settle({ seq: e.seq, ok: true });
    } catch (err) {
      settle(failed(e.seq, err));
    }
  }
  return list.map((e) => outcomes.get(e.seq)!);
}
