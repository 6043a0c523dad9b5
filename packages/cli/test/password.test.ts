import { PassThrough } from 'node:stream';
import { expect, it } from 'vitest';
import { promptPassword } from '../src/process/password.js';

/** A fake terminal: what is typed goes in, what the prompt writes is collected. */
function terminal(tty = true) {
  const input = Object.assign(new PassThrough(), { isTTY: tty });
  const output = new PassThrough();
  let written = '';
  output.on('data', (d) => {
    written += d;
  });
  return { input, output, written: () => written };
}

it('asks on the terminal, returns what was typed, and never echoes it', async () => {
  const t = terminal();
  const answer = promptPassword('root', t);
  t.input.write('s3cr');
  t.input.write('et\r');
  await expect(answer).resolves.toBe('s3cret');
  expect(t.written()).toBe('Password for root: \n');
});

it('line editing still works without echo (a backspace removes the last character)', async () => {
  const t = terminal();
  const answer = promptPassword('admin', t);
  t.input.write('passx\x7fword\r');
  await expect(answer).resolves.toBe('password');
  expect(t.written()).not.toContain('pass');
});

it('without a terminal it says how to give the password', async () => {
  const t = terminal(false);
  await expect(promptPassword('root', t)).rejects.toMatchObject({ code: 'NO_PASSWORD' });
  expect(t.written()).toBe('');
});

it('Ctrl-C at the prompt is NO_PASSWORD, not a hang', async () => {
  const t = terminal();
  const answer = promptPassword('root', t);
  t.input.write('\x03');
  await expect(answer).rejects.toMatchObject({ code: 'NO_PASSWORD' });
});
