import { Argument, Command, Option } from 'commander';
import { type Declare, date, once, oneOf, settingsOf, uuid, withConnection } from './options.js';

/** `xsmeta legacy list|convert`: the old scripts' ext3 backups, read in user space. */
export const legacyCommand: Declare = (ctx) =>
  withConnection(
    new Command('legacy')
      .description('list or convert the backups of the old xe-backup-metadata (ext3)')
      .addArgument(
        new Argument(
          '<action>',
          'list: the legacy backups; convert: copy them into the ring',
        ).argParser(oneOf(['list', 'convert'] as const)),
      )
      .addOption(
        new Option('--sr <UUID>', "the SR (default: the pool's default SR)").argParser(
          once('--sr', uuid('--sr')),
        ),
      )
      .addOption(
        new Option('--vdi <VDI_UUID>', 'the legacy disk to trust').argParser(
          once('--vdi', uuid('--vdi')),
        ),
      )
      .addOption(
        new Option('--date <DATE>', 'convert only this backup (YYYY-MM-DD-HH-MM-SS)').argParser(
          once('--date', date),
        ),
      )
      .option('--json', 'print the result as one JSON document'),
  )
    .addHelpText(
      'after',
      `
Backups written by the old xe-backup-metadata (an ext3 filesystem on a VDI), read in user
space, never mounted. Running this command allows reading them (as -o does upstream); any
guest can forge such a disk, so only one is trusted: --vdi names it, else the SR's own
backup VDI when it holds one, else the single candidate found on the SR (several: refused).
convert copies them (all, or --date DATE) into the SR's ring, oldest first, each keeping its
date, marked converted. Nothing is evicted: dates already there, or beyond the ring's count,
are skipped and reported. When the legacy disk is the backup VDI itself, a verified copy of
it is kept as a new VDI first.`,
    )
    .action(
      async (
        action: 'list' | 'convert',
        o: { sr?: string; vdi?: string; date?: string; json?: true },
      ) => {
        const s = settingsOf(o);
        const { cmdLegacy } = await import('../legacy.js');
        ctx.exit(await cmdLegacy(action, o, s, ctx.io));
      },
    );
