// The off-site copy of one backup: a single self-describing, checksummed file.
//
//   line 1   `XSMETA-COPY 1`                         (magic and format version)
//   line 2   a JSON header: pool, SR, date, the record's label (base64), size, sha256, entry
//   then     the record's bytes, exactly `size` of them (the ring record as stored, or, with
//            `"encryption": "age"`, the record encrypted to an age recipient)
//   last     `\nSHA256 <hex>\n`: the digest of every byte before it
//
// `head -2 FILE` tells what a file holds; any flipped byte fails one of the two digests.
import { createHash } from 'node:crypto';

export const COPY_MAGIC = 'XSMETA-COPY';
export const COPY_VERSION = 1;
const MAX_HEADER = 64 * 1024;

export class CopyFileError extends Error {
  readonly code = 'COPY_FILE_INVALID';
}

export interface CopyHeader {
  formatVersion: number;
  poolUuid: string;
  srUuid: string;
  /** The backup's date (YYYY-MM-DD-HH-MM-SS), as `list` shows it. */
  date: string;
  /** When the backup was made, ms since the epoch (kept when imported into a ring). */
  createdAt: number;
  /** The ring seq it was exported from (informative). */
  seq: number;
  /** The record's label, base64 (what the ring's index holds for it). */
  label: string;
  size: number;
  /** sha256 of the record's bytes (before encryption). */
  sha256: string;
  /** Present when the record is encrypted: the header stays readable, the record does not. */
  encryption?: 'age';
  /** sha256 of the index entry (label, date, size): how `copy` knows a backup it has. */
  entry: string;
}

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The digest that names a ring record without reading it: its label, creation time, size. */
export function entryDigest(label: Uint8Array, createdAt: number, size: number): string {
  return createHash('sha256').update(label).update(`\0${createdAt}\0${size}`).digest('hex');
}

/** `encrypted`: the record as encrypted to an age recipient, stored in its place. */
export function encodeCopy(
  h: Omit<CopyHeader, 'formatVersion' | 'label' | 'size' | 'sha256' | 'entry' | 'encryption'>,
  label: Uint8Array,
  record: Uint8Array,
  encrypted?: Uint8Array,
): Uint8Array {
  const stored = encrypted ?? record;
  const header: CopyHeader = {
    formatVersion: COPY_VERSION,
    ...h,
    label: Buffer.from(label).toString('base64'),
    size: stored.length,
    sha256: hex(record),
    entry: entryDigest(label, h.createdAt, record.length),
    ...(encrypted ? { encryption: 'age' as const } : {}),
  };
  const head = Buffer.from(`${COPY_MAGIC} ${COPY_VERSION}\n${JSON.stringify(header)}\n`);
  const body = Buffer.concat([head, stored]);
  return Buffer.concat([body, Buffer.from(`\nSHA256 ${hex(body)}\n`)]);
}

/** The header alone (lines 1 and 2), for a quick look at a file; no digest is checked. */
export function readCopyHeader(bytes: Uint8Array): { header: CopyHeader; start: number } {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nl1 = b.indexOf(10);
  if (nl1 < 0 || b.subarray(0, nl1).toString() !== `${COPY_MAGIC} ${COPY_VERSION}`) {
    const first = nl1 > 0 ? b.subarray(0, Math.min(nl1, 40)).toString() : '';
    throw new CopyFileError(
      first.startsWith(COPY_MAGIC)
        ? `unsupported copy format "${first}": this xsmeta reads version ${COPY_VERSION}`
        : 'not an xsmeta backup copy (no XSMETA-COPY first line)',
    );
  }
  const nl2 = b.indexOf(10, nl1 + 1);
  if (nl2 < 0 || nl2 - nl1 > MAX_HEADER)
    throw new CopyFileError('the copy header is cut or too long');
  let header: CopyHeader;
  try {
    header = JSON.parse(b.subarray(nl1 + 1, nl2).toString('utf8')) as CopyHeader;
  } catch {
    throw new CopyFileError('the copy header is not JSON');
  }
  if (
    typeof header.size !== 'number' ||
    !Number.isSafeInteger(header.size) ||
    header.size < 0 ||
    typeof header.sha256 !== 'string' ||
    typeof header.label !== 'string' ||
    typeof header.createdAt !== 'number'
  )
    throw new CopyFileError('the copy header lacks its size, digest, label or date');
  return { header, start: nl2 + 1 };
}

/**
 * Checks the file's digest (and the record's, when it is not encrypted) and returns the
 * header, the label and the stored record (still encrypted when `header.encryption` is set:
 * check it with `checkRecord` once decrypted).
 */
export function decodeCopy(bytes: Uint8Array): {
  header: CopyHeader;
  label: Uint8Array;
  record: Uint8Array;
} {
  const { header, start } = readCopyHeader(bytes);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = start + header.size;
  const trailer = b.subarray(end).toString('latin1');
  const m = /^\nSHA256 ([0-9a-f]{64})\n$/.exec(trailer);
  if (!m) throw new CopyFileError('the copy is cut short or has bytes after its end');
  if (hex(b.subarray(0, end)) !== m[1])
    throw new CopyFileError('the copy is damaged: its SHA256 does not match');
  const record = new Uint8Array(b.subarray(start, end));
  if (header.encryption === undefined) checkRecord(header, record);
  else if (header.encryption !== 'age')
    throw new CopyFileError(`unsupported encryption ${String(header.encryption)}`);
  return { header, label: new Uint8Array(Buffer.from(header.label, 'base64')), record };
}

/** The record (decrypted) is the one the header describes. */
export function checkRecord(header: CopyHeader, record: Uint8Array): void {
  if (hex(record) !== header.sha256)
    throw new CopyFileError('the copy is damaged: its record does not match its sha256');
}
