/**
 * The ring's on-disk geometry (FORMAT.md): sizes, magics, flags, and the in-memory shape of a
 * root and of its index entries, shared by every ring module.
 */
import { RingError } from '../errors.js';

/** The on-disk format version this build writes (see FORMAT.md). */
export const RING_FORMAT_VERSION = 2;
/**
 * The oldest reader version able to read what this build writes: version 2 records carry their
 * label after the payload (flag in the index entry), which a version 1 reader would misread.
 */
export const RING_COMPAT_VERSION = 2;

export const ROOT_MAGIC = 'XSMROOT1';
export const REC_MAGIC = 'XSMREC01';
export const ROOT_SIZE = 128 * 1024;
export const DATA_START = 2 * ROOT_SIZE;
export const BLOCK = 4096;
/** A root copy's header; its entries follow. */
export const HEADER = 256;
export const ENTRY = 560;
export const LABEL_MAX = 512;
export const MAX_SLOTS = 128;
export const REC_HEADER = 64;
export const READ_CHUNK = 1024 * 1024;
/** Reads of a record kept in flight while one chunk is checked (1 MiB chunks, cold disk: 2). */
export const READ_AHEAD = 2;
export const SCAN_CHUNK = 4 * 1024 * 1024;
/** Index entry flag: the record carries its label after its payload (format version 2). */
export const FLAG_LABEL_IN_RECORD = 1;
/** Index entry flag: the record carries a signature trailer after its label. */
export const FLAG_SIGNED = 2;
/** Record header flag (u16 at 46): the record is signed. */
export const REC_SIGNED = 1;
/** The signature trailer: Ed25519 signature (64 bytes) then the signing key's id (8 bytes). */
export const SIG_TRAILER = 72;

export const enc = new TextEncoder();
export const dec = new TextDecoder();

export interface Entry {
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

export interface Root {
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

export const align = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
/** The bytes a record occupies: header, payload, label and trailer rounded up to a block. */
export const span = (e: Entry) =>
  align(REC_HEADER + e.length + (e.inline ? e.label.length : 0) + (e.signed ? SIG_TRAILER : 0));
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function corrupt(msg: string): RingError {
  return new RingError('RING_CORRUPT', msg);
}

export function overlaps(a0: number, a1: number, b0: number, b1: number): boolean {
  return a0 < b1 && b0 < a1;
}
