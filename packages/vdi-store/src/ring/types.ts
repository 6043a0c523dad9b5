/** The ring's public types (exported by the package's index) and the index-entry view of one. */
import type { Entry } from './layout.js';

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

export function info(e: Entry): RecordInfo {
  return { seq: e.seq, createdAt: e.createdAt, size: e.length, label: e.label.slice() };
}
