import { backupVdiOf, decodeLabel } from '@xsmeta/core';
import { Ring } from '@xsmeta/vdi-store';
import { openDevice } from './adapters/disk.js';
import type { Settings } from './config.js';
import type { Io } from './output.js';
import { lockSr } from './process/lock.js';
import { withPool } from './root.js';

/** `xsmeta repair`: dry run by default; with --yes writes the rebuilt root under the SR lock. */
export async function repair(
  s: Settings,
  values: { sr?: string | undefined; yes?: boolean | undefined; json?: boolean | undefined },
  io: Io,
): Promise<number> {
  const apply = values.yes === true;
  const report = await withPool(
    s,
    async (pool) => {
      const id = await backupVdiOf(pool, values.sr);
      const unlock = apply ? await lockSr(s.stateDir, id.srUuid, false) : () => {};
      try {
        const att = await pool.attach(id.vdiUuid, { readOnly: !apply });
        try {
          const dev = await openDevice(att.devicePath, !apply);
          try {
            return await Ring.repair(dev, { apply, expect: id });
          } finally {
            await dev.close();
          }
        } finally {
          await att.detach();
        }
      } finally {
        unlock();
      }
    },
    values.sr,
  );
  const records = report.records.map((r) => ({
    seq: r.seq,
    date: decodeLabel(r.label)?.date ?? `unknown-${r.seq}`,
  }));
  if (values.json) {
    io.out(JSON.stringify({ ...report, records }));
  } else {
    for (const w of report.warnings) io.out(`found: ${w}`);
    for (const w of report.ignored) io.out(`left out: ${w}`);
    if (report.clean) io.out(`The root is whole: ${records.length} backup(s), nothing to repair.`);
    else {
      for (const r of records) io.out(`${r.date}  seq ${r.seq}`);
      io.out(
        report.written
          ? `Rebuilt the root: it lists ${records.length} backup(s).`
          : `Would rebuild the root to list ${records.length} backup(s): run again with --yes to write it.`,
      );
    }
  }
  return report.clean || report.written || !apply ? 0 : 1;
}
