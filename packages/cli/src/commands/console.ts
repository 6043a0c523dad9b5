import { Command } from 'commander';
import { type Declare, settingsOf, withConnection } from './options.js';

/** `xsmeta console`: the TUI (Backup, Restore and Update). */
export const consoleCommand: Declare = (ctx) =>
  withConnection(
    new Command('console').description(
      'the console (Backup, Restore and Update): arrow keys, Enter and Esc',
    ),
  ).action(async (o: Record<string, unknown>) => {
    const s = settingsOf(o);
    // A console on a terminal is interactive even inside a CI job: Ink must draw every frame.
    if (process.stdout.isTTY) process.env.CI = 'false';
    const { cmdConsole } = await import('../console.js');
    ctx.exit(await cmdConsole(s));
  });
