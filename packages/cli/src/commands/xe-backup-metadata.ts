import { Command, Option } from 'commander';
import { progressBar } from '../process/progress.js';
import { type Declare, ENVIRONMENT, keep, once, settingsOf, uuid } from './options.js';

/**
 * Upstream-compatible `xe-backup-metadata` over the ring: the flags of xen-api's
 * scripts/xe-backup-metadata, with what each means here.
 */
export const xeBackupProgram: Declare = (ctx) =>
  new Command('xe-backup-metadata')
    .description("Back up the pool's VM metadata to the Pool Metadata Backup VDI of an SR.")
    .option('-c', 'create the Pool Metadata Backup VDI when it is missing (with -n too)')
    .addOption(
      new Option(
        '-i',
        're-initialise the backup ring (destroys the backups on it; asks unless -y)',
      ).conflicts('n'),
    )
    .addOption(
      new Option('-u <SR_UUID>', "the SR to back up to (default: the pool's default SR)").argParser(
        once('-u', uuid('-u')),
      ),
    )
    .addOption(
      new Option('-k <N>', 'how many backups to keep (1..100, default 25)').argParser(
        once('-k', keep),
      ),
    )
    .option('-n', 'only find the backup VDI and print its uuid, then stop')
    .option('-f', 'accepted for compatibility: the ring needs no fsck or forced remount')
    .option('-v', 'verbose')
    .option('-y', 'answer yes to questions')
    .option(
      '-d',
      'not supported: upstream opens a shell on the mounted disk; xsmeta never mounts it',
    )
    .addHelpText(
      'after',
      `
${ENVIRONMENT}

On a pool host with no XSMETA_URL set, xapi's local socket is used as local root, as xe does
(that is how xsconsole and cron run it).

Exit 0 on success, 3 when the backup VDI does not exist and -c was not given, 4 when the
backup was written but left out VMs that xapi kept busy (named on stderr), 2 on a usage
error, 1 otherwise.`,
    )
    .action(
      async (o: {
        c?: true;
        i?: true;
        u?: string;
        k?: number;
        n?: true;
        f?: true;
        v?: true;
        y?: true;
        d?: true;
      }) => {
        const { io } = ctx;
        if (o.d) {
          // Upstream's -d opens a shell on the mounted backup disk; xsmeta never mounts it.
          io.err(
            "xe-backup-metadata: -d is not supported: xsmeta never mounts the backup disk; use 'xsmeta list' or 'xsmeta verify' to look at the backups. Nothing was done.",
          );
          ctx.exit(1);
          return;
        }
        const s = settingsOf({});
        const { backup, partialBackup } = await import('../services.js');
        const { ABORTED, confirm } = await import('../process/confirm.js');
        if (o.f)
          io.err(
            'xe-backup-metadata: -f has no effect: the backup disk is a checksummed ring, never fsck-ed or mounted',
          );
        if (o.i && !o.y) {
          const on = o.u ? `on SR ${o.u}` : "on the pool's default SR";
          if (!(await confirm(`Re-initialising destroys every backup ${on}.`))) {
            io.err(ABORTED);
            ctx.exit(1);
            return;
          }
        }
        const bar = progressBar(io, { enabled: io.isTTY });
        const r = await backup(
          s,
          {
            srUuid: o.u,
            create: o.c === true,
            keep: o.k,
            reinit: o.i === true,
            findOnly: o.n === true,
            wait: false,
            progress: bar.tick,
            ownProcess: true,
          },
          bar.io,
        ).finally(bar.end);
        if (r.createdVdi)
          io.err(`Created the Pool Metadata Backup VDI ${r.vdiUuid} on SR ${r.srUuid}`);
        if (o.n) {
          io.out(r.vdiUuid);
          ctx.exit(0);
          return;
        }
        if (o.v)
          io.err(
            `Backed up ${r.vmCount} VM(s) and ${r.templateCount} template(s): ${r.rawBytes} bytes stored in ${r.storedBytes}`,
          );
        io.out(`Backup ${r.date} written to VDI ${r.vdiUuid} (seq ${r.seq})`);
        ctx.exit(partialBackup(r, io));
      },
    );
