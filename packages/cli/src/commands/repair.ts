import { Command, Option } from 'commander';
import { type Declare, once, settingsOf, uuid, withConnection } from './options.js';

/** `xsmeta repair`: rebuild the backup disk's root from its records; a dry run unless --yes. */
export const repairCommand: Declare = (ctx) =>
  withConnection(
    new Command('repair')
      .description("rebuild the backup disk's root (its index) from the records on it")
      .addOption(
        new Option('--sr <UUID>', "the SR (default: the pool's default SR)").argParser(
          once('--sr', uuid('--sr')),
        ),
      )
      .option('-y, --yes', "write the rebuilt root (takes the SR's backup lock)")
      .option('--json', 'print the report as one JSON document'),
  )
    .addHelpText(
      'after',
      `
The root is rebuilt from the surviving root copy plus every committed record found beyond it,
or, when both copies are gone, from every intact record of the ring (a full scan). A dry run
by default. Exit 0 when the root is whole (or was rebuilt), 1 otherwise.`,
    )
    .action(async (o: { sr?: string; yes?: true; json?: true }) => {
      const s = settingsOf(o);
      const { repair } = await import('../repair.js');
      ctx.exit(await repair(s, o, ctx.io));
    });
