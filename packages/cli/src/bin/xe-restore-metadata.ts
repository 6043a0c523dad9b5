import '../process/young-generation.js';
import { run } from '../commands/options.js';
import { xeRestoreProgram } from '../commands/xe-restore-metadata.js';
import { type Io, stdio } from '../output.js';

/** Upstream-compatible `xe-restore-metadata`. */
export function main(argv: string[], io: Io = stdio): Promise<number> {
  return run('xe-restore-metadata', xeRestoreProgram, argv, io);
}
