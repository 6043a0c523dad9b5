/**
 * `verify` (FORMAT.md "Record"): every record read as a reader reads it (header, payload
 * checksum, signature), then through the caller's record check; each failure named by seq, a
 * record evicted by a concurrent backup told apart from damage.
 */
import { RingError } from '../errors.js';
import { collect, type RingView, readRecord } from './read.js';
import type { RecordCheck, VerifyReport } from './types.js';

/** Reads and checks every record of the view's root, newest first. */
export async function verifyRecords(
  view: RingView,
  onProgress: ((done: number, total: number) => void) | undefined,
  check: RecordCheck | undefined,
): Promise<VerifyReport['records']> {
  const records: VerifyReport['records'] = [];
  const list = view.root.entries.slice().reverse();
  let i = 0;
  for (const e of list) {
    try {
      if (check) await check(await collect(readRecord(view, e)), e.seq);
      else
        for await (const _ of readRecord(view, e)) {
          // readRecord() verifies as it goes
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
  return records;
}
