import '../process/young-generation.js';
import { run } from '../commands/options.js';
import { xsmetaProgram } from '../commands/xsmeta.js';
import { type Io, stdio } from '../output.js';

/** `xsmeta <command>`: the commands are declared one a file under ../commands/. */
export function main(argv: string[], io: Io = stdio): Promise<number> {
  return run('xsmeta', xsmetaProgram, argv, io);
}
