import { Command, Option } from 'commander';
import { progressBar } from '../process/progress.js';
import { type Declare, date, once, oneOf, settingsOf, uuid, withConnection } from './options.js';

/** `xsmeta restore`: VM metadata from a backup; asks first unless -y/--yes or --dry-run. */
export const restoreCommand: Declare = (ctx) =>
  withConnection(
    new Command('restore')
      .description('restore VM metadata from a backup')
      .addOption(
        new Option(
          '--sr <UUID>',
          "the SR holding the backup (default: the pool's default SR)",
        ).argParser(once('--sr', uuid('--sr'))),
      )
      .addOption(
        new Option(
          '--date <DATE>',
          'the backup to restore, YYYY-MM-DD-HH-MM-SS (default: the newest)',
        ).argParser(once('--date', date)),
      )
      .addOption(
        new Option(
          '--mode <MODE>',
          'sr: only the VMs with a disk on the SR; all (default): every VM and custom template',
        ).argParser(once('--mode', oneOf(['sr', 'all'] as const))),
      )
      .option('--dry-run', 'every check, no change to the pool')
      .option('--force', 'replace existing VMs, skip missing disks (vm-import --force)')
      .option(
        '-y, --yes',
        "do not ask for confirmation (without it: asks, and only 'yes' goes ahead)",
      )
      .option('--json', 'print the result as one JSON document')
      .addOption(
        new Option(
          '--from <FILE>',
          "restore from an off-site copy file (xsmeta export, xsmeta copy) instead of the SR's ring",
        ).argParser(once('--from', String)),
      )
      .addOption(
        new Option(
          '--identity <FILE>',
          'the age identity of an encrypted copy file (or XSMETA_AGE_IDENTITY)',
        ).argParser(once('--identity', String)),
      ),
  )
    .addHelpText(
      'after',
      "\nEnds with 'Restored N VM(s), and M error(s)'; exit status M (at most 125); 1 when nothing could be attempted or the answer was not yes; 3 when the SR has no backup VDI.",
    )
    .action(
      async (o: {
        sr?: string;
        date?: string;
        mode?: 'sr' | 'all';
        dryRun?: true;
        force?: true;
        yes?: true;
        json?: true;
        from?: string;
        identity?: string;
      }) => {
        const s = settingsOf(o);
        const { backupName, restoreAsking } = await import('../services.js');
        const { restoreSummaryLine } = await import('@xsmeta/core');
        const { ABORTED, confirm } = await import('../process/confirm.js');
        const dryRun = o.dryRun === true;
        const mode = o.mode ?? 'all';
        if (o.from !== undefined) {
          const { cmdRestoreFrom } = await import('../offsite/commands.js');
          ctx.exit(await cmdRestoreFrom(o.from, { ...o, mode }, s, ctx.io));
          return;
        }
        const bar = progressBar(ctx.io, { enabled: ctx.io.isTTY && !o.json });
        const r = await restoreAsking(
          s,
          { srUuid: o.sr, date: o.date, mode, dryRun, force: o.force === true, progress: bar.tick },
          bar.io,
          o.json ? undefined : bar.io.out,
          async (b) =>
            o.yes === true ||
            confirm(
              `This imports ${mode === 'sr' ? `the VMs on SR ${b.srUuid}` : 'every VM and custom template'} from ${backupName(b)} into the pool.`,
            ),
        ).finally(bar.end);
        if (r === null) {
          ctx.io.err(ABORTED);
          ctx.exit(1);
          return;
        }
        ctx.io.out(o.json ? JSON.stringify(r) : restoreSummaryLine(r.restored, r.errors));
        ctx.exit(Math.min(r.errors, 125));
      },
    );
