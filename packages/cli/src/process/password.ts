import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { ConfigError } from '../config.js';

/** A terminal to ask on: the input and where the question is written. */
export interface PromptTerminal {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream;
}

/**
 * Asks for the pool password on the terminal, without echo. The question is written to
 * `output` (stderr, so that stdout stays the command's); what is typed goes through readline's
 * line editing into an output that drops it (public readline API only). No terminal: the
 * error that says how to give the password instead. Ctrl-C or the input's end: NO_PASSWORD.
 */
export async function promptPassword(
  user: string,
  term: PromptTerminal = { input: process.stdin, output: process.stderr },
): Promise<string> {
  const none = (how: string) =>
    new ConfigError(
      'NO_PASSWORD',
      `no password${how}: set XSMETA_PASSWORD_FILE, XSMETA_PASSWORD or --password-file`,
    );
  if (!term.input.isTTY) throw none('');
  term.output.write(`Password for ${user}: `);
  const muted = new Writable({ write: (_chunk, _enc, done) => done() });
  const rl = createInterface({ input: term.input, output: muted, terminal: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      rl.question('', resolve);
      rl.once('SIGINT', () => reject(none(' given (interrupted)')));
      rl.once('close', () => reject(none(' given')));
    });
  } finally {
    rl.close();
    term.output.write('\n');
  }
}
