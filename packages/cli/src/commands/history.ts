import { Command, Option } from 'commander';
import { type Declare, HISTORY_PAGE, once, settingsOf, withConnection } from './options.js';

/** `xsmeta history`: one line per run, newest first; `--run ID` for that run's events. */
export const historyCommand: Declare = (ctx) =>
  withConnection(
    new Command('history')
      .description(
        'show the recorded runs (backups, restores, conversions, schedule), newest first',
      )
      .addOption(
        new Option('--run <ID>', "that run's events, oldest first").argParser(
          once('--run', String),
        ),
      )
      .addOption(
        new Option(
          '--since <DATE>',
          'only runs started at or after DATE (e.g. 2026-11-30)',
        ).argParser(once('--since', String)),
      )
      .addOption(
        new Option(
          '--kind <KIND>',
          'only runs of KIND: backup, restore, convert, schedule',
        ).argParser(once('--kind', String)),
      )
      .option('--all', `every run that matches, not only the newest ${HISTORY_PAGE}`)
      .option('--json', 'print one JSON document'),
  )
    .addHelpText(
      'after',
      `\nThe newest ${HISTORY_PAGE} runs that match are shown (--all: every one). A run whose process died before it ended shows as ABANDONED, with what it had done.`,
    )
    .action(async (o: { run?: string; since?: string; kind?: string; json?: true; all?: true }) => {
      const s = settingsOf(o);
      const { openEvents } = await import('../adapters/event-log.js');
      const { printHistory } = await import('../history.js');
      ctx.exit(
        await printHistory(
          openEvents(s.stateDir),
          s.stateDir,
          { json: o.json === true, all: o.all === true, run: o.run, since: o.since, kind: o.kind },
          ctx.io.out,
        ),
      );
    });
