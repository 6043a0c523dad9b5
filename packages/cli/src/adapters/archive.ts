import type { ArchivePort } from '@xsmeta/core';
import { readArchive, writeArchive } from '@xsmeta/vdi-store';

/** Core's `ArchivePort`: a record's compressed archive of parts (@xsmeta/vdi-store's archive.ts). */
export const archive: ArchivePort = {
  write: (parts, opts) => writeArchive(parts, opts),
  read: (bytes, opts) => readArchive(bytes, opts),
};
