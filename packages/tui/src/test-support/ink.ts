/** Helpers for rendering the console in tests: key sequences, waits, frames as plain text. */
import { EventEmitter } from 'node:events';
import { render } from 'ink';
import type { ReactElement } from 'react';

const ESC = String.fromCharCode(27);

/** The byte sequences a terminal sends for these keys. */
export const KEYS = {
  up: `${ESC}[A`,
  down: `${ESC}[B`,
  right: `${ESC}[C`,
  left: `${ESC}[D`,
  enter: '\r',
  escape: ESC,
  tab: '\t',
  backspace: '\u007f',
  ctrlC: '\u0003',
} as const;

const ANSI = new RegExp(`${ESC}\\[[0-9;?]*[ -/]*[@-~]|${ESC}\\][^\\u0007]*\\u0007`, 'g');

/** A frame without colours and cursor moves. */
export function plain(frame: string | undefined): string {
  return (frame ?? '').replace(ANSI, '');
}

/** A frame as one line of words: no borders, every run of blanks and line ends as one space. */
export function flat(frame: string | undefined): string {
  return plain(frame)
    .replace(/[│╭╮╰╯─]/g, ' ')
    .replace(/\s+/g, ' ');
}

export const tick = (ms = 15) => new Promise<void>((r) => setTimeout(r, ms));

interface Writable {
  write(data: string): void;
}

/**
 * Types `keys` one by one, giving Ink time to handle each (a lone Esc is only known to be
 * one after a turn of the event loop).
 */
export async function press(stdin: Writable, ...keys: string[]): Promise<void> {
  for (const k of keys) {
    stdin.write(k);
    await tick();
  }
}

/**
 * Waits until the plain last frame satisfies `pred` (contains it, for a string). The bound is
 * generous (the suite runs on busy machines): it only turns a hang into a clear failure.
 */
export async function waitForFrame(
  lastFrame: () => string | undefined,
  pred: string | ((frame: string) => boolean),
  timeoutMs = 60_000,
): Promise<string> {
  const ok = typeof pred === 'string' ? (f: string) => f.includes(pred) : pred;
  const until = Date.now() + timeoutMs;
  for (;;) {
    const f = plain(lastFrame());
    if (ok(f)) return f;
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${String(pred)}; the screen is:\n${f}`);
    }
    await tick(10);
  }
}

class FakeStdout extends EventEmitter {
  readonly frames: string[] = [];
  isTTY = false;
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  write = (frame: string) => {
    this.frames.push(frame);
    return true;
  };
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  isRaw = false;
  #data: string | null = null;
  write = (data: string) => {
    this.#data = data;
    this.emit('readable');
  };
  read = () => {
    const d = this.#data;
    this.#data = null;
    return d;
  };
  setRawMode(on: boolean) {
    this.isRaw = on;
    return this;
  }
  setEncoding() {
    return this;
  }
  ref() {
    return this;
  }
  unref() {
    return this;
  }
  resume() {
    return this;
  }
  pause() {
    return this;
  }
}

/** Renders at a given terminal size (ink-testing-library's screen is 100 columns, no rows). */
export function renderSized(tree: ReactElement, size: { columns: number; rows: number }) {
  const stdout = new FakeStdout(size.columns, size.rows);
  const stdin = new FakeStdin();
  const instance = render(tree, {
    stdout: stdout as unknown as NodeJS.WriteStream,
    stdin: stdin as unknown as NodeJS.ReadStream,
    debug: true,
    exitOnCtrlC: false,
    patchConsole: false,
  });
  return {
    stdin,
    stdout,
    lastFrame: () => stdout.frames[stdout.frames.length - 1],
    unmount: () => instance.unmount(),
  };
}

/** Streams that look like a terminal, for `runConsole`. */
export function fakeTerminal(size = { columns: 80, rows: 24 }) {
  const stdout = new FakeStdout(size.columns, size.rows);
  stdout.isTTY = true;
  return { stdin: new FakeStdin(), stdout };
}
