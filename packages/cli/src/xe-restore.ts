import {
  backupVdiOf,
  checkNamedBackupVdi,
  listings,
  resolveSr,
  restoreSummaryLine,
  withRing,
} from '@xsmeta/core';
import { disk } from './adapters/disk.js';
import {
  legacyCandidates,
  readLegacyBackup,
  resolveLegacyVdi,
  withLegacyDisk,
} from './adapters/legacy-disk.js';
import { settingsOf } from './commands/options.js';
import type { Settings } from './config.js';
import type { Io } from './output.js';
import { ABORTED, confirm } from './process/confirm.js';
import { progressBar } from './process/progress.js';
import { withPool } from './root.js';
import { backupName, restoreAsking, restoreOn } from './services.js';

/** What `xe-restore-metadata` was given (its declaration: commands/xe-restore-metadata.ts). */
export interface Flags {
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
  from?: string;
  identity?: string;
}

/** `xe-restore-metadata`: runs what its flags ask, loaded only when it runs. */
export async function restoreMain(values: Flags, io: Io): Promise<number> {
  const mode = values.m ?? 'all';
  const s = settingsOf({});
  if (values.from !== undefined) {
    const { cmdRestoreFrom } = await import('./offsite/commands.js');
    return cmdRestoreFrom(
      values.from,
      { identity: values.identity, mode, dryRun: values.n, force: values.f, yes: values.y },
      s,
      io,
    );
  }
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
  const named = values.x;
  if (named) await withPool(s, (p) => checkNamedBackupVdi(p, srUuid, named), srUuid);
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
  io.out(restoreSummaryLine(r.restored, r.errors));
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
      io.out(restoreSummaryLine(r.restored, r.errors));
      return Math.min(r.errors, 125);
    },
    a.srUuid,
  );
}
