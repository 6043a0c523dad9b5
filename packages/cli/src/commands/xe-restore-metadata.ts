import { Command, Option } from 'commander';
import type { Flags } from '../xe-restore.js';
import { type Declare, date, ENVIRONMENT, once, oneOf, uuid } from './options.js';

/**
 * Upstream-compatible `xe-restore-metadata`: the flags of xen-api's
 * scripts/xe-restore-metadata, over the ring (and, with -o, the old ext3 disks).
 */
export const xeRestoreProgram: Declare = (ctx) =>
  new Command('xe-restore-metadata')
    .description('Restore VM metadata from the Pool Metadata Backup VDI of an SR.')
    .option('-v', 'verbose')
    .option('-y', "do not ask for confirmation (without it: asks, and only 'yes' goes ahead)")
    .option('-n', 'dry run: every check, no change to the pool')
    .addOption(
      new Option('-p', 'print the uuid of each backup VDI found on the SR, one a line').conflicts(
        'l',
      ),
    )
    .option('-f', 'force, as vm-import --force')
    .option('-o', 'allow legacy backup VDIs')
    .addOption(
      new Option(
        '-x <VDI_UUID>',
        "the backup VDI (a uuid other than the SR's own backup VDI needs -o)",
      ).argParser(once('-x', uuid('-x'))),
    )
    .addOption(
      new Option(
        '-u <SR_UUID>',
        "the SR holding the backup (default: the pool's default SR)",
      ).argParser(once('-u', uuid('-u'))),
    )
    .addOption(
      new Option(
        '-m <MODE>',
        'sr: only the VMs with a disk on that SR; all (default): every VM and custom template',
      ).argParser(once('-m', oneOf(['all', 'sr'] as const))),
    )
    .option('-l', 'list the available backups, newest first, as YYYY-MM-DD-HH-MM-SS')
    .addOption(
      new Option(
        '-d <DATE>',
        'the backup to restore (default: the newest that verifies)',
      ).argParser(once('-d', date)),
    )
    .addOption(
      new Option(
        '--from <FILE>',
        'restore from an off-site copy file (xsmeta export, xsmeta copy)',
      ).argParser(once('--from', String)),
    )
    .addOption(
      new Option('--identity <FILE>', 'the age identity of an encrypted copy file').argParser(
        once('--identity', String),
      ),
    )
    .addHelpText(
      'after',
      `
${ENVIRONMENT}

Ends with 'Restored N VM(s), and M error(s)'; exit status M (at most 125), 1 when nothing
could be attempted or the answer was not yes, 2 on a usage error, 3 when the SR has no
backup VDI.`,
    )
    .action(async (o: Flags) => {
      const { restoreMain } = await import('../xe-restore.js');
      ctx.exit(await restoreMain(o, ctx.io));
    });
