import { backupVdiOf, listings, withRing } from '@xsmeta/core';
import { confirm, parse, restore, restoreOn, summaryLine, withPool } from '../commands.js';
import type { Settings } from '../config.js';
import { connectionFlags, resolveSettings, UsageError } from '../config.js';
import { legacyCandidates, readLegacyBackup, resolveLegacyVdi, withLegacyDisk } from '../legacy.js';
import { errorLine, type Io, stdio } from '../output.js';
import { disk } from '../runtime.js';

const USAGE = `usage: xe-restore-metadata [-h] [-v] [-y] [-n] [-p] [-f] [-o] [-x VDI_UUID] [-u SR_UUID] [-m all|sr] [-l] [-d DATE]
 -h  this help
 -u  the SR holding the backup (default: the pool's default SR)
 -p  print the uuid of each backup VDI found on the SR, one a line
 -l  list the available backups, newest first, as YYYY-MM-DD-HH-MM-SS
 -d  the backup to restore (default: the newest that verifies)
 -m  sr: only the VMs with a disk on that SR; all (default): every VM and custom template
 -n  dry run: every check, no change to the pool
 -f  force, as vm-import --force
 -y  do not ask for confirmation
 -x  the backup VDI (a uuid other than the SR's own backup VDI needs -o)
 -o  allow legacy backup VDIs
 -v  verbose
 --from FILE  restore from an off-site copy file (xsmeta export, xsmeta copy)
 --identity FILE  the age identity of an encrypted copy file
Ends with 'Restored N VM(s), and M error(s)'; exit status M (at most 125), or 1 when nothing
could be attempted.`;

/** Upstream-compatible `xe-restore-metadata` (CONTRACT.md). */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  try {
    const { values } = parse(argv, {
      h: { type: 'boolean', short: 'h' },
      v: { type: 'boolean', short: 'v' },
      y: { type: 'boolean', short: 'y' },
      n: { type: 'boolean', short: 'n' },
      p: { type: 'boolean', short: 'p' },
      f: { type: 'boolean', short: 'f' },
      o: { type: 'boolean', short: 'o' },
      x: { type: 'string', short: 'x' },
      u: { type: 'string', short: 'u' },
      m: { type: 'string', short: 'm' },
      l: { type: 'boolean', short: 'l' },
      d: { type: 'string', short: 'd' },
      from: { type: 'string' },
      identity: { type: 'string' },
    });
    if (values.h) {
      io.out(USAGE);
      return 0;
    }
    const mode = (values.m as string | undefined) ?? 'all';
    if (mode !== 'sr' && mode !== 'all') throw new UsageError(`-m takes sr or all, not ${mode}`);
    if (typeof values.from === 'string') {
      const flags = { n: '--dry-run', f: '--force', y: '--yes' } as const;
      const args = ['--from', values.from, '--mode', mode];
      if (typeof values.identity === 'string') args.push('--identity', values.identity);
      for (const [k, flag] of Object.entries(flags)) if (values[k]) args.push(flag);
      return await (await import('../offsite/commands.js')).cmdRestoreFrom(args, io);
    }
    const s = resolveSettings(connectionFlags({}));
    const srUuid = values.u as string | undefined;
    if (values.o)
      return await legacyRestore(
        s,
        {
          srUuid,
          vdi: values.x as string | undefined,
          date: values.d as string | undefined,
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
      const own = await withPool(s, async (p) =>
        p.backupVdiUuid(srUuid ?? (await p.pool()).defaultSrUuid ?? ''),
      );
      if (values.x !== own)
        throw new UsageError(
          `refusing VDI ${values.x}: only the SR's own backup VDI (${own}) is trusted; -o allows legacy VDIs`,
        );
    }
    if (values.p || values.l) {
      await withPool(s, async (pool) => {
        const id = await backupVdiOf(pool, srUuid);
        if (values.p) io.out(id.vdiUuid);
        if (values.l)
          for (const l of await withRing(pool, disk, id, true, async (r) => listings(r)))
            io.out(l.date);
      });
      return 0;
    }
    const dryRun = values.n === true;
    if (
      !dryRun &&
      !values.y &&
      !(await confirm(
        io,
        `This restores ${mode === 'sr' ? 'the VMs on the SR' : 'every VM'} into the pool.`,
      ))
    ) {
      io.err('Aborted: nothing was restored.');
      return 1;
    }
    const r = await restore(
      s,
      { srUuid, date: values.d as string | undefined, mode, dryRun, force: values.f === true },
      io,
      io.out,
    );
    if (values.v)
      for (const sr of r.srs)
        io.err(
          `SR ${sr.uuid}: ${sr.restored ? (dryRun ? 'names would be restored' : 'names restored') : `skipped (${sr.reason})`}`,
        );
    io.out(summaryLine(r));
    return Math.min(r.errors, 125);
  } catch (e) {
    io.err(errorLine('xe-restore-metadata', e));
    if (e instanceof UsageError) io.err("Run 'xe-restore-metadata -h' for usage.");
    return 1;
  }
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
  return withPool(s, async (pool) => {
    const srUuid = a.srUuid ?? (await pool.pool()).defaultSrUuid;
    if (!srUuid) throw new UsageError('name the SR with -u SR_UUID');
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
        io,
        'This restores VM metadata from a LEGACY backup, which any guest could have forged.',
      ))
    ) {
      io.err('Aborted: nothing was restored.');
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
  });
}
