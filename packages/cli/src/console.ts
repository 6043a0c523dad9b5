import type { Io } from './output.js';

/** `xsmeta console`: wired in the next change; until then it says so. */
export async function cmdConsole(_argv: string[], io: Io): Promise<number> {
  io.err('xsmeta: the console is not wired to the pool yet in this build');
  return 1;
}
