import { render } from 'ink';
import { ConsoleError } from './errors.js';
import { describeError } from './machines/keys.js';
import type { ConsoleServices } from './services.js';
import { Console } from './ui/Console.js';
import { WorkTracker, WorkTrackerContext } from './ui/work.js';

export interface RunConsoleOptions {
  /** Default `process.stdin`; must be a terminal. */
  readonly stdin?: NodeJS.ReadStream;
  /** Default `process.stdout`. */
  readonly stdout?: NodeJS.WriteStream;
  /** Shown in the header, e.g. the pool's name. */
  readonly title?: string;
  /** How long to wait, on the way out, for aborted service calls to settle. Default 5000. */
  readonly settleMs?: number;
}

/** How the console ended. */
export type ConsoleExit =
  | { readonly reason: 'quit' }
  | { readonly reason: 'signal'; readonly signal: 'SIGINT' | 'SIGTERM' | 'SIGHUP' };

const ALT_SCREEN_ON = '\u001B[?1049h\u001B[H\u001B[2J';
const ALT_SCREEN_OFF = '\u001B[?1049l';
const SHOW_CURSOR = '\u001B[?25h';
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs the console until the user quits, a signal arrives or something crashes; in every case
 * the terminal gets back its normal mode, its cursor and its main screen, and the service
 * calls under way are aborted and awaited (at most `settleMs`).
 */
export async function runConsole(
  services: ConsoleServices,
  opts: RunConsoleOptions = {},
): Promise<ConsoleExit> {
  const stdin = opts.stdin ?? process.stdin;
  const stdout = opts.stdout ?? process.stdout;
  if (!stdin.isTTY || typeof stdin.setRawMode !== 'function') {
    throw new ConsoleError(
      'CONSOLE_NO_TTY',
      'The console needs an interactive terminal, and its input is not one.',
    );
  }
  const fullScreen = stdout.isTTY === true;
  let restored = false;
  const restoreTerminal = () => {
    if (restored) return;
    restored = true;
    try {
      if (stdin.isRaw) stdin.setRawMode(false);
    } catch {
      // A terminal that is gone has no mode to restore.
    }
    if (fullScreen && !stdout.destroyed) {
      try {
        stdout.write(SHOW_CURSOR + ALT_SCREEN_OFF);
      } catch {
        // Likewise.
      }
    }
  };

  const tracker = new WorkTracker();
  let exit: ConsoleExit = { reason: 'quit' };
  let crash: unknown;
  if (fullScreen) stdout.write(ALT_SCREEN_ON);
  process.on('exit', restoreTerminal);
  let instance: ReturnType<typeof render>;
  try {
    instance = render(
      <WorkTrackerContext.Provider value={tracker}>
        <Console services={services} {...(opts.title === undefined ? {} : { title: opts.title })} />
      </WorkTrackerContext.Provider>,
      // Not Ink's incrementalRendering: in Ink 6.8 it draws one line too low when the frame
      // ends with a newline (as ours does, being one line shorter than the screen).
      { stdin, stdout, exitOnCtrlC: false, patchConsole: true },
    );
  } catch (err) {
    process.off('exit', restoreTerminal);
    restoreTerminal();
    throw new ConsoleError(
      'CONSOLE_CRASHED',
      `The console could not start: ${describeError(err)}`,
      {
        cause: err,
      },
    );
  }
  const done = instance.waitUntilExit();
  const onSignal = (signal: (typeof SIGNALS)[number]) => {
    exit = { reason: 'signal', signal };
    instance.unmount();
  };
  const onCrash = (err: unknown) => {
    crash ??= err;
    instance.unmount();
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);
  try {
    await done;
  } catch (err) {
    crash ??= err;
  } finally {
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    instance.cleanup();
    restoreTerminal();
    process.off('exit', restoreTerminal);
    await tracker.settle(opts.settleMs ?? 5000);
  }
  if (crash !== undefined) {
    throw new ConsoleError(
      'CONSOLE_CRASHED',
      `The console stopped on an unexpected error: ${describeError(crash)}`,
      { cause: crash },
    );
  }
  return exit;
}
