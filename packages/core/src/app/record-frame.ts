import { AppError } from './errors.js';

/** A record is two archives back to back: the parts, then the manifest (each length-prefixed). */
export function joinRecord(parts: Uint8Array, manifest: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + parts.length + manifest.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(parts.length), true);
  out.set(parts, 8);
  out.set(manifest, 8 + parts.length);
  return out;
}

/** The two archives of a record (see joinRecord); BACKUP_INVALID when the framing is damaged. */
export function splitRecord(record: Uint8Array): { parts: Uint8Array; manifest: Uint8Array } {
  if (record.length < 8) throw new AppError('BACKUP_INVALID', 'backup record is too short');
  const n = Number(new DataView(record.buffer, record.byteOffset, 8).getBigUint64(0, true));
  if (n > record.length - 8)
    throw new AppError('BACKUP_INVALID', 'backup record framing is damaged');
  return { parts: record.subarray(8, 8 + n), manifest: record.subarray(8 + n) };
}
