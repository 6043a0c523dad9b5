import { describe, expect, it } from 'vitest';
import { ConsoleError } from './errors.js';
import { runConsole } from './run.js';
import type { SrChoice } from './services.js';
import { FakeConsoleServices } from './test-support/fake-services.js';
import { fakeTerminal, KEYS, plain, press, waitForFrame } from './test-support/ink.js';

type Term = ReturnType<typeof fakeTerminal>;
const output = (t: Term) => t.stdout.frames.join('');

function start(services = new FakeConsoleServices()) {
  const term = fakeTerminal();
  const run = runConsole(services, {
    stdin: term.stdin as unknown as NodeJS.ReadStream,
    stdout: term.stdout as unknown as NodeJS.WriteStream,
    title: 'pool-1',
    settleMs: 2000,
  });
  const screen = (pred: string) => waitForFrame(() => output(term), pred);
  return { term, run, services, screen };
}

/** The terminal as a user gets it back: cooked mode, a cursor, the main screen. */
function expectRestored(t: Term) {
  const out = output(t);
  expect(t.stdin.isRaw).toBe(false);
  expect(out.startsWith('\u001B[?1049h')).toBe(true);
  expect(out.endsWith('\u001B[?25h\u001B[?1049l')).toBe(true);
}

describe('runConsole', () => {
  it('runs full screen in raw mode, and Quit gives the terminal back', async () => {
    const { term, run, screen } = start();
    await screen('xsmeta console · pool-1');
    expect(term.stdin.isRaw).toBe(true);
    await press(term.stdin, KEYS.down, KEYS.down, KEYS.down, KEYS.down, KEYS.enter);
    await expect(run).resolves.toEqual({ reason: 'quit' });
    expectRestored(term);
  });

  it('q and Ctrl-C quit from the menu too', async () => {
    const a = start();
    await a.screen('Quit');
    await press(a.term.stdin, 'q');
    await expect(a.run).resolves.toEqual({ reason: 'quit' });
    const b = start();
    await b.screen('Quit');
    await press(b.term.stdin, KEYS.down, KEYS.enter);
    await b.screen('Back up the VM metadata to which');
    await press(b.term.stdin, KEYS.ctrlC);
    await expect(b.run).resolves.toEqual({ reason: 'quit' });
    expectRestored(b.term);
  });

  it('on SIGTERM, aborts the backup under way, waits for it, and restores the terminal', async () => {
    const listeners = process.listenerCount('SIGTERM');
    const { term, run, screen, services } = start();
    services.pause();
    await screen('Quit');
    await press(term.stdin, KEYS.down, KEYS.enter);
    await screen('Back up the VM metadata to which');
    await press(term.stdin, KEYS.enter);
    await screen('Reading the pool database');
    process.emit('SIGTERM', 'SIGTERM');
    await expect(run).resolves.toEqual({ reason: 'signal', signal: 'SIGTERM' });
    expect(services.calls).toContain('backup aborted');
    expect(services.srs[0]!.ring!.records).toHaveLength(3);
    expectRestored(term);
    expect(process.listenerCount('SIGTERM')).toBe(listeners);
  });

  it('on a crash, restores the terminal and throws CONSOLE_CRASHED with the cause', async () => {
    const listeners = process.listenerCount('uncaughtException');
    const services = new FakeConsoleServices();
    // A service that breaks its promise: an SR without a name makes a view throw.
    services.listSrs = async () => [{ uuid: 'x' } as unknown as SrChoice];
    const { term, run, screen } = start(services);
    await screen('Quit');
    await press(term.stdin, KEYS.down, KEYS.enter);
    const err = await run.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConsoleError);
    expect((err as ConsoleError).code).toBe('CONSOLE_CRASHED');
    expect((err as ConsoleError).cause).toBeInstanceOf(Error);
    expectRestored(term);
    expect(process.listenerCount('uncaughtException')).toBe(listeners);
  });

  it('refuses to start without a terminal (CONSOLE_NO_TTY), leaving the streams untouched', async () => {
    const term = fakeTerminal();
    term.stdin.isTTY = false;
    await expect(
      runConsole(new FakeConsoleServices(), {
        stdin: term.stdin as unknown as NodeJS.ReadStream,
        stdout: term.stdout as unknown as NodeJS.WriteStream,
      }),
    ).rejects.toMatchObject({ code: 'CONSOLE_NO_TTY' });
    expect(plain(output(term))).toBe('');
  });
});
