/**
 * The parts of an append (FORMAT.md "Append", "Eviction"): which records it keeps, where the
 * new record goes, and writing it (header, payload, label, signature trailer, then a flush).
 * Ring.append orders them with the root commits that make the crash-safety argument.
 */
import type { KeyObject } from 'node:crypto';
import type { BlockDevice } from '../device.js';
import { encodeRecordHeader } from './codec.js';
import { DATA_START, type Entry, overlaps, REC_HEADER, type Root, span } from './layout.js';
import { signatureTrailer } from './signing.js';

/**
 * The records an append keeps: the newest `keep - 1` by creation time (ties: the higher seq),
 * not by append order: a record made from an old backup (converted) may be appended after newer
 * ones.
 */
export function retained(entries: Entry[], keep: number): Entry[] {
  const drop = new Set(
    [...entries]
      .sort((a, b) => a.createdAt - b.createdAt || a.seq - b.seq)
      .slice(0, Math.max(0, entries.length - (keep - 1)))
      .map((e) => e.seq),
  );
  return entries.filter((e) => !drop.has(e.seq));
}

/** Where a record of `need` bytes would go without touching any of `keep`, or null. */
export function place(root: Root, need: number, keep: Entry[]): number | null {
  const capacity = root.dataEnd - DATA_START;
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

/** Writes the record of `entry` (header, payload, label, trailer when signed), then flushes. */
export async function writeRecord(
  dev: BlockDevice,
  nonce: Uint8Array,
  entry: Entry,
  data: Uint8Array,
  signer: KeyObject | undefined,
): Promise<void> {
  const at = DATA_START + entry.offset;
  await dev.write(at, encodeRecordHeader(entry, nonce));
  if (data.length > 0) await dev.write(at + REC_HEADER, data);
  if (entry.label.length > 0) await dev.write(at + REC_HEADER + data.length, entry.label);
  if (signer) {
    const trailer = signatureTrailer(signer, entry.createdAt, data, entry.label);
    await dev.write(at + REC_HEADER + data.length + entry.label.length, trailer);
  }
  await dev.flush();
}
