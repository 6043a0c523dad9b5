import { Command, Option } from 'commander';
import { progressBar } from '../process/progress.js';
import { type Declare, keep, once, settingsOf, uuid, withConnection } from './options.js';

/** `xsmeta backup`: one backup of the pool's metadata; its result goes to stdout. */
export const backupCommand: Declare = (ctx) =>
  withConnection(
    new Command('backup')
      .description("back up the pool's metadata to an SR's Pool Metadata Backup disk")
      .addOption(
        new Option(
          '--sr <UUID>',
          "the SR to back up to (default: the pool's default SR)",
        ).argParser(once('--sr', uuid('--sr'))),
      )
      .option('--create', 'create the Pool Metadata Backup VDI when missing (500 MiB)')
      .addOption(
        new Option('--keep <N>', 'keep the newest N backups (1..100, default 25)').argParser(
          once('--keep', keep),
        ),
      )
      .option('--wait', 'wait for another backup of the same SR to finish instead of failing')
      .option('--json', 'print the result as one JSON document'),
  )
    .addHelpText(
      'after',
      '\nExit 0 on success, 3 when the SR has no backup VDI and --create was not given, 4 when the backup is partial (VMs xapi kept busy were left out), 1 otherwise.',
    )
    .action(async (o: { sr?: string; create?: true; keep?: number; wait?: true; json?: true }) => {
      const s = settingsOf(o);
      const { fmtBytes } = await import('@xsmeta/core');
      const { backup, partialBackup } = await import('../services.js');
      const bar = progressBar(ctx.io, { enabled: ctx.io.isTTY && !o.json });
      const r = await backup(
        s,
        {
          srUuid: o.sr,
          create: o.create === true,
          keep: o.keep,
          reinit: false,
          findOnly: false,
          wait: o.wait === true,
          progress: bar.tick,
          ownProcess: true,
        },
        bar.io,
      ).finally(bar.end);
      ctx.io.out(
        o.json
          ? JSON.stringify(r)
          : `Backed up ${r.vmCount} VM(s) and ${r.templateCount} template(s) to SR ${r.srUuid} as ${r.date} (seq ${r.seq}): ${fmtBytes(r.rawBytes)} stored in ${fmtBytes(r.storedBytes)}`,
      );
      ctx.exit(partialBackup(r, ctx.io));
    });
