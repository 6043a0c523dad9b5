import { join } from 'node:path';
import { Command, Option } from 'commander';
import { initKeys, SIGNING_FILE, VERIFY_FILE } from '../keys.js';
import { type Declare, once, settingsOf } from './options.js';

/** `xsmeta keys init [--dir DIR]`: an Ed25519 key pair for signed backups. */
export const keysCommand: Declare = (ctx) =>
  new Command('keys').description('manage the keys of signed backups').addCommand(
    new Command('init')
      .description('create an Ed25519 key pair for signed backups')
      .addOption(
        new Option('--dir <DIR>', 'where to write the keys (default: <state dir>/keys)').argParser(
          once('--dir', String),
        ),
      )
      .addOption(
        new Option('--state-dir <DIR>', 'the event log folder').argParser(
          once('--state-dir', String),
        ),
      )
      .addHelpText(
        'after',
        `
Writes DIR/${SIGNING_FILE} (mode 0600: keep it on the hosts that back up) and
DIR/${VERIFY_FILE} (give it to whoever restores). Existing keys are never overwritten.
Then XSMETA_SIGNING_KEY=DIR/${SIGNING_FILE} signs every backup, and
XSMETA_VERIFY_KEY=DIR/${VERIFY_FILE} makes verify and restore refuse unsigned or badly
signed backups.`,
      )
      .action((o: { dir?: string; stateDir?: string }) => {
        initKeys(o.dir ?? join(settingsOf(o).stateDir, 'keys'), ctx.io);
        ctx.exit(0);
      }),
  );
