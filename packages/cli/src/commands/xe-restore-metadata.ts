import { AppError, backupVdiOf, listings, resolveSr, withRing } from '@xsmeta/core';
import { Command, Option } from 'commander';
import { backupName, restoreAsking, restoreOn, summaryLine, withPool } from '../commands.js';
import type { Settings } from '../config.js';
import { legacyCandidates, readLegacyBackup, resolveLegacyVdi, withLegacyDisk } from '../legacy.js';
import type { Io } from '../output.js';
import { ABORTED, confirm } from '../process/confirm.js';
import { progressBar } from '../process/progress.js';
import { disk } from '../runtime.js';
import { type Declare, date, ENVIRONMENT, once, oneOf, settingsOf, uuid } from './options.js';

interface Flags {
  v?: true;
  y?: true;
  n?: true;
  p?: true;
  f?: true;
  o?: true;
  x?: string;
  u?: string;
  m?: 'sr' | 'all';
  l?: true;
  d?: string;
}

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
    .addHelpText(
      'after',
      `
${ENVIRONMENT}

Ends with 'Restored N VM(s), and M error(s)'; exit status M (at most 125), 1 when nothing
could be attempted or the answer was not yes, 2 on a usage error, 3 when the SR has no
backup VDI.`,
    )
    .action(async (o: Flags) => {
      ctx.exit(await restoreMain(o, ctx.io));
    });

async function restoreMain(values: Flags, io: Io): Promise<number> {
  const mode = values.m ?? 'all';
  const s = settingsOf({});
  const srUuid = values.u;
  if (values.o)
    return legacyRestore(
      s,
      {
        srUuid,
        vdi: values.x,
        date: values.d,
        mode,
        dryRun: values.n === true,
        force: values.f === true,
        list: values.l === true,
        probe: values.p === true,
        yes: values.y === true,
      },
      io,
    );
  if (values.x) {
    const own = await withPool(s, async (p) => p.backupVdiUuid(await resolveSr(p, srUuid)), srUuid);
    if (values.x !== own)
      throw new AppError(
        'UNTRUSTED_VDI',
        `refusing VDI ${values.x}: only the SR's own backup VDI (${own}) is trusted; -o allows legacy VDIs`,
      );
  }
  if (values.p || values.l) {
    await withPool(
      s,
      async (pool) => {
        const id = await backupVdiOf(pool, srUuid);
        if (values.p) io.out(id.vdiUuid);
        if (values.l)
          for (const l of await withRing(pool, disk, id, true, async (r) => listings(r)))
            io.out(l.date);
      },
      srUuid,
    );
    return 0;
  }
  const dryRun = values.n === true;
  const bar = progressBar(io, { enabled: io.isTTY });
  const r = await restoreAsking(
    s,
    { srUuid, date: values.d, mode, dryRun, force: values.f === true, progress: bar.tick },
    bar.io,
    bar.io.out,
    async (b) =>
      values.y === true ||
      confirm(
        `This restores ${mode === 'sr' ? `the VMs on SR ${b.srUuid}` : 'every VM and custom template'} from ${backupName(b)} into the pool.`,
      ),
  ).finally(bar.end);
  if (r === null) {
    io.err(ABORTED);
    return 1;
  }
  if (values.v)
    for (const sr of r.srs)
      io.err(
        `SR ${sr.uuid}: ${sr.restored ? (dryRun ? 'names would be restored' : 'names restored') : `skipped (${sr.reason})`}`,
      );
  io.out(summaryLine(r));
  return Math.min(r.errors, 125);
}

/** `-o`: restore from a legacy (ext3) backup VDI, read in user space, never mounted. */
async function legacyRestore(
  s: Settings,
  a: {
    srUuid: string | undefined;
    vdi: string | undefined;
    date: string | undefined;
    mode: 'sr' | 'all';
    dryRun: boolean;
    force: boolean;
    list: boolean;
    probe: boolean;
    yes: boolean;
  },
  io: Io,
): Promise<number> {
  return withPool(
    s,
    async (pool) => {
      const srUuid = await resolveSr(pool, a.srUuid);
      if (a.probe) {
        // Every candidate, one a line: how an administrator finds the VDI to name with -x.
        for (const v of (await legacyCandidates(pool, srUuid, a.vdi)).found) io.out(v);
        return 0;
      }
      const { vdiUuid } = await resolveLegacyVdi(pool, srUuid, a.vdi);
      if (a.list) {
        for (const d of await withLegacyDisk(pool, vdiUuid, async (disk) => disk.dates)) io.out(d);
        return 0;
      }
      const { content, notes } = await readLegacyBackup(pool, vdiUuid, a.date);
      for (const n of notes) io.err(n);
      if (
        !a.dryRun &&
        !a.yes &&
        !(await confirm(
          `This restores VM metadata from the LEGACY backup of ${content.date} on VDI ${vdiUuid} (SR ${srUuid}), which any guest could have forged.`,
        ))
      ) {
        io.err(ABORTED);
        return 1;
      }
      const r = await restoreOn(
        pool,
        s,
        { srUuid, mode: a.mode, dryRun: a.dryRun, force: a.force },
        io,
        io.out,
        { id: { srUuid, vdiUuid }, content, legacy: true },
      );
      io.out(summaryLine(r));
      return Math.min(r.errors, 125);
    },
    a.srUuid,
  );
}
