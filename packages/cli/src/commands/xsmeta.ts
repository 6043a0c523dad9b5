import { Command } from 'commander';
import { backupCommand } from './backup.js';
import { completionCommand } from './completion.js';
import { consoleCommand } from './console.js';
import { historyCommand } from './history.js';
import { keysCommand } from './keys.js';
import { legacyCommand } from './legacy.js';
import { listCommand } from './list.js';
import { copyCommand, exportCommand, importCommand } from './offsite.js';
import { type Ctx, type Declare, ENVIRONMENT } from './options.js';
import { repairCommand } from './repair.js';
import { restoreCommand } from './restore.js';
import { scheduleCommand } from './schedule.js';
import { verifyCommand } from './verify.js';
import { xeBackupProgram } from './xe-backup-metadata.js';
import { xeRestoreProgram } from './xe-restore-metadata.js';

/** Every `xsmeta` sub-command, one declaration each. */
const COMMANDS: Declare[] = [
  backupCommand,
  listCommand,
  verifyCommand,
  restoreCommand,
  scheduleCommand,
  historyCommand,
  legacyCommand,
  repairCommand,
  keysCommand,
  exportCommand,
  importCommand,
  copyCommand,
  consoleCommand,
];

/** The `xsmeta` program: its sub-commands, `help <command>` and `completion bash`. */
export const xsmetaProgram: Declare = (ctx: Ctx) => {
  const program = new Command('xsmeta')
    .description('Back up and restore the VM metadata of a XenServer / XCP-ng pool.')
    .addHelpText(
      'after',
      `
Run 'xsmeta help <command>' or 'xsmeta <command> --help' for a command's options.
Connection flags of every command: --url, --username, --password-file, --inventory,
--dev-dir, --state-dir, --socket.

${ENVIRONMENT}

Exit status: 0 success; 1 failure (one line on stderr) or a confirmation not answered yes;
2 usage error (nothing was done); 3 the SR has no backup VDI (backup without --create,
list, verify, restore); a restore exits with its error count (at most 125).`,
    );
  for (const declare of COMMANDS) program.addCommand(declare(ctx));
  program.addCommand(
    completionCommand(() => [
      xsmetaProgram({ io: ctx.io, exit: () => {} }),
      xeBackupProgram(ctx),
      xeRestoreProgram(ctx),
    ])(ctx),
  );
  return program;
};
