import { AppError } from './errors.js';
import type { ArchivePort } from './ports.js';
import { checkFormatVersion, type Manifest, PART } from './record.js';
import { splitRecord } from './record-frame.js';

/** Decodes an archive's parts one by one and keeps none (vdi-store's scanArchive). */
export type PartScanner = (
  bytes: Uint8Array,
) => AsyncIterable<{ name: string; rawBytes: number; sha256: string }>;

/**
 * A record's manifest, checked as every reader needs it: JSON, with its parts listed, of a
 * format version this build reads. Anything else is BACKUP_INVALID (or the version's own code).
 */
export async function readManifest(
  archive: Pick<ArchivePort, 'read'>,
  mbytes: Uint8Array,
): Promise<Manifest> {
  let manifest: Manifest | null = null;
  for await (const p of archive.read(mbytes)) {
    if (p.name !== PART.manifest) continue;
    try {
      manifest = JSON.parse(new TextDecoder().decode(p.data)) as Manifest;
    } catch {
      throw new AppError('BACKUP_INVALID', 'the manifest is not JSON');
    }
  }
  if (!manifest || !Array.isArray(manifest.parts))
    throw new AppError('BACKUP_INVALID', 'the record has no manifest');
  checkFormatVersion(manifest.formatVersion);
  return manifest;
}

/**
 * Checks a ring record as a restore would read it, without keeping it: the framing, the
 * manifest (its format version this build reads), then every part decoded (within the archive
 * limits the writer and the reader share) and matched against the manifest's size and sha256.
 * Memory stays at one decompressed chunk. Throws the error a restore would meet.
 */
export async function verifyRecord(
  bytes: Uint8Array,
  archive: Pick<ArchivePort, 'read'>,
  scan: PartScanner,
): Promise<void> {
  const { parts, manifest: mbytes } = splitRecord(bytes);
  const manifest = await readManifest(archive, mbytes);
  const want = new Map(manifest.parts.map((p) => [p.name, p]));
  let seen = 0;
  for await (const p of scan(parts)) {
    const m = want.get(p.name);
    if (!m || m.sha256 !== p.sha256 || m.rawBytes !== p.rawBytes)
      throw new AppError('BACKUP_DAMAGED', `part ${p.name} does not match the manifest`);
    seen++;
  }
  if (seen !== want.size)
    throw new AppError(
      'BACKUP_DAMAGED',
      `the record holds ${seen} of the ${want.size} parts its manifest lists`,
    );
}
