import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';

/**
 * Asks before a destructive step, as upstream's xe-restore-metadata does: the question goes to
 * stderr and one line is read from stdin, a terminal or a pipe alike. Only `yes` proceeds; any
 * other answer, an empty stdin (`< /dev/null`), a closed one or a read error says no.
 */
export function confirm(
  question: string,
  input: Readable = process.stdin,
  output: NodeJS.WritableStream = process.stderr,
): Promise<boolean> {
  output.write(`${question} Type 'yes' to continue: `);
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer: string | null) => {
      if (done) return;
      done = true;
      rl.close();
      input.pause();
      if (answer === null) output.write('\n');
      resolve(answer?.trim() === 'yes');
    };
    const rl = createInterface({ input, terminal: false });
    rl.once('line', (l) => finish(l));
    rl.once('close', () => finish(null));
    input.once('error', () => finish(null));
  });
}

/** The line printed when a confirmation is refused; the command then exits 1. */
export const ABORTED = 'Aborted: nothing was changed (answer yes, or pass -y/--yes, to go ahead).';
