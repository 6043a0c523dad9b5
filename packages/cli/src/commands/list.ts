import { fmtBytes, listings } from '@xsmeta/core';
import { Command, Option } from 'commander';
import { withBackupRing } from '../commands.js';
import { warnRoot } from '../ring-report.js';
import { type Declare, once, settingsOf, uuid, withConnection } from './options.js';

/** `xsmeta list`: the backups on an SR, newest first. */
export const listCommand: Declare = (ctx) =>
  withConnection(
    new Command('list')
      .description('list the backups on an SR, newest first')
      .addOption(
        new Option('--sr <UUID>', "the SR (default: the pool's default SR)").argParser(
          once('--sr', uuid('--sr')),
        ),
      )
      .option('--json', 'print the list as one JSON document'),
  )
    .addHelpText('after', '\nExit 0; 3 when the SR has no backup VDI; 1 on any other failure.')
    .action(async (o: { sr?: string; json?: true }) => {
      const rows = await withBackupRing(settingsOf(o), o.sr, async (ring) => {
        warnRoot(ring, ctx.io);
        return listings(ring);
      });
      if (o.json) ctx.io.out(JSON.stringify(rows.map(({ converted: _, ...r }) => r)));
      else
        for (const r of rows)
          ctx.io.out(
            `${r.date}  seq ${r.seq}  ${r.vmCount} VM(s), ${r.templateCount} template(s)  ${fmtBytes(r.storedBytes)}  format ${r.formatVersion}${r.converted ? ' (converted from a legacy backup)' : ''}${r.skippedVms ? `  PARTIAL: ${r.skippedVms} VM(s) left out` : ''}`,
          );
      ctx.exit(0);
    });
