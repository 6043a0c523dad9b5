import { Argument, Command } from 'commander';
import { type Declare, oneOf, settingsOf, withConnection } from './options.js';

/** `xsmeta schedule`: shows or sets the frequency; `run` is what cron calls. */
export const scheduleCommand: Declare = (ctx) =>
  withConnection(
    new Command('schedule')
      .description('show or set the backup schedule (daily, weekly, monthly, never)')
      .addArgument(
        new Argument(
          '[frequency]',
          "daily, weekly, monthly or never; 'run' runs a due backup (what cron calls)",
        ).argParser(oneOf(['daily', 'weekly', 'monthly', 'never', 'run'] as const)),
      )
      .option('--json', 'print the schedule (or the run) as one JSON document'),
  )
    .addHelpText(
      'after',
      `
With a frequency: sets it (scheduled backups go to the pool's default SR at 02:00 local
time: daily, on Sundays, or on the 1st) and installs an hourly cron entry in
$XSMETA_CRON_DIR (default /etc/cron.d); a run backs up when a slot is due, and a failed slot
is retried at the next one. A password given in XSMETA_PASSWORD is stored for the job in a
root-only file of the state folder, never in the cron entry. No argument: shows it.`,
    )
    .action(async (what: string | undefined, o: { json?: true }) => {
      const s = settingsOf(o);
      const { cmdSchedule } = await import('../schedule.js');
      ctx.exit(await cmdSchedule(what, o.json === true, s, ctx.io));
    });
