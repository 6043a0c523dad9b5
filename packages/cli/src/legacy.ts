import { convertRefusal, legacyListing, resolveSr, runConvert } from '@xsmeta/core';
import { archive } from './adapters/archive.js';
import { systemClock } from './adapters/clock.js';
import { disk as ringDisk } from './adapters/disk.js';
import { historyLostLine, withEvents } from './adapters/event-log.js';
import { legacyReader, refusal, resolveLegacyVdi, withLegacyDisk } from './adapters/legacy-disk.js';
import type { Settings } from './config.js';
import type { Io } from './output.js';
import { lockSr } from './process/lock.js';
import { progressBar } from './process/progress.js';
import { withPool } from './root.js';

/**
 * `xsmeta legacy list|convert`: running this command is the opt-in to reading legacy disks.
 * The disk is chosen by core's `legacyAccess` (`--vdi` names one; see resolveLegacyVdi).
 */
export async function cmdLegacy(
  sub: 'list' | 'convert',
  o: {
    sr?: string | undefined;
    vdi?: string | undefined;
    date?: string | undefined;
    json?: boolean;
  },
  s: Settings,
  io: Io,
): Promise<number> {
  const named = o.vdi;
  const json = o.json === true;
  return withPool(
    s,
    async (pool) => {
      const srUuid = await resolveSr(pool, o.sr);
      const { vdiUuid, how } = await resolveLegacyVdi(pool, srUuid, named);
      if (sub === 'list') {
        const report = await withLegacyDisk(pool, vdiUuid, async (d) => ({
          srUuid,
          vdiUuid,
          ...(await legacyListing(d)),
          warnings: d.warnings,
        }));
        if (json) io.out(JSON.stringify(report));
        else {
          io.err(`Legacy backup VDI ${vdiUuid} on SR ${srUuid} (read, never mounted):`);
          for (const b of report.backups)
            io.out(
              b.damaged
                ? `${b.date}  DAMAGED (${b.damaged})`
                : `${b.date}  ${b.vmCount} VM(s) and template(s)`,
            );
          for (const k of report.skipped) io.err(`skipped ${k.path}: ${k.reason}`);
          for (const w of report.warnings) io.err(`warning: ${w}`);
        }
        return 0;
      }
      const refused = convertRefusal({ vdiUuid, how });
      if (refused) throw refusal(refused);
      const date = o.date;
      let notes: string[] = [];
      const unlock = await lockSr(s.stateDir, srUuid, false);
      const bar = progressBar(io, { enabled: io.isTTY && !json });
      try {
        // What a killed conversion of this SR left (under this lock, so no live run's).
        for (const gone of await pool.removeDeadCopies(srUuid))
          io.err(`Removed VDI ${gone}, an unfinished copy a conversion that died left behind.`);
        const r = await withEvents(
          s.stateDir,
          (events) =>
            runConvert(
              {
                pool,
                disk: ringDisk,
                archive,
                legacy: legacyReader(pool, (n) => {
                  notes = n;
                }),
                clock: systemClock,
                events,
                progress: bar.tick,
              },
              { srUuid, legacyVdiUuid: vdiUuid, ...(date ? { dates: [date] } : {}) },
            ),
          (e) => io.err(historyLostLine('conversion', e)),
        );
        bar.end();
        if (json) io.out(JSON.stringify({ ...r, notes }));
        else {
          for (const n of notes) io.err(n);
          if (r.keptCopyVdiUuid)
            io.err(
              `The legacy disk was the backup VDI itself: a verified copy of it is kept as VDI ${r.keptCopyVdiUuid}.`,
            );
          for (const c of r.converted)
            io.out(
              `Converted ${c.date}: ${c.vmCount} VM(s), ${c.templateCount} template(s) (seq ${c.seq})`,
            );
          for (const k of r.skipped) io.out(`Skipped ${k.date}: ${k.reason}`);
          io.out(
            `Converted ${r.converted.length} legacy backup(s) into the ring on VDI ${r.vdiUuid}, skipped ${r.skipped.length}`,
          );
        }
        return 0;
      } finally {
        bar.end();
        unlock();
      }
    },
    o.sr,
  );
}
