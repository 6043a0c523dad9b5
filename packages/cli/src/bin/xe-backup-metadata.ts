import '../process/young-generation.js';
import { run } from '../commands/options.js';
import { xeBackupProgram } from '../commands/xe-backup-metadata.js';
import { type Io, stdio } from '../output.js';

/** Upstream-compatible `xe-backup-metadata` over the ring. */
export function main(argv: string[], io: Io = stdio): Promise<number> {
  return run('xe-backup-metadata', xeBackupProgram, argv, io);
}
