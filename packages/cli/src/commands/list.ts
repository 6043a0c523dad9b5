import { Command, Option } from 'commander';
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
      const s = settingsOf(o);
      const { fmtBytes, listings } = await import('@xsmeta/core/catalogue');
      const { withBackupRing } = await import('../root.js');
      const { warnRoot } = await import('../ring-report.js');
      const rows = await withBackupRing(s, o.sr, async (ring) => {
        warnRoot(ring, ctx.io);
        return listings(ring);
      });
      if (o.json) ctx.io.out(JSON.stringify(rows.map(({ converted: _, ...r }) => r)));
      else
        for (const r of rows)
          ctx.io.out(
            `${r.date}  seq ${r.seq}  ${r.vmCount} VM(s), ${r.templateCount} template(s)  ${fmtBytes(r.storedBytes)}  format ${r.formatVersion}${r.converted ? ' (converted from a legacy backup)' : ''}${r.skippedVms ? `  PARTIAL: ${r.skippedVms} VM(s) left out` : ''}`,
          );
      if (!o.json) {
        // Backups whose process died part-way: the history has what they had done.
        const sr = o.sr ?? rows[0]?.srUuid ?? null;
        const { openEvents } = await import('../adapters/event-log.js');
        const { abandonedBackups } = await import('../history.js');
        for (const l of await abandonedBackups(openEvents(s.stateDir), s.stateDir, sr))
          ctx.io.out(l);
      }
      ctx.exit(0);
    });
