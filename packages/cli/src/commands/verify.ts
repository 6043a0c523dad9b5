import { Command, Option } from 'commander';
import { type Declare, once, settingsOf, uuid, withConnection } from './options.js';

/** `xsmeta verify`: every record's checksums; exit 0 only when all verify. */
export const verifyCommand: Declare = (ctx) =>
  withConnection(
    new Command('verify')
      .description("check every backup's checksums")
      .addOption(
        new Option('--sr <UUID>', "the SR (default: the pool's default SR)").argParser(
          once('--sr', uuid('--sr')),
        ),
      )
      .option('--json', 'print the report as one JSON document'),
  )
    .addHelpText(
      'after',
      '\nExit 0 when every backup verifies; 1 when one is damaged or on any other failure; 3 when the SR has no backup VDI.',
    )
    .action(async (o: { sr?: string; json?: true }) => {
      const s = settingsOf(o);
      const { listings } = await import('@xsmeta/core/catalogue');
      const { withBackupRing } = await import('../root.js');
      const { rootOf } = await import('../ring-report.js');
      const { report, partial } = await withBackupRing(s, o.sr, async (ring) => ({
        report: await ring.verify(),
        partial: new Map(listings(ring).map((l) => [l.seq, l.skippedVms ?? 0])),
      }));
      // A partial backup verifies (its checksums hold) but is marked: it lacks VMs.
      const records = report.records.map((r) => ({
        seq: r.seq,
        ok: r.ok,
        ...(r.ok ? {} : { error: r.error ?? r.code ?? 'damaged' }),
        ...(partial.get(r.seq) ? { skippedVms: partial.get(r.seq) } : {}),
      }));
      if (o.json) ctx.io.out(JSON.stringify({ ok: report.ok, ...rootOf(report), records }));
      else {
        for (const w of report.root?.warnings ?? []) ctx.io.out(`root: ${w}`);
        for (const r of records)
          ctx.io.out(
            `seq ${r.seq}: ${r.ok ? 'ok' : `DAMAGED: ${r.error}`}${r.skippedVms ? ` (partial: ${r.skippedVms} VM(s) left out)` : ''}`,
          );
      }
      ctx.exit(report.ok ? 0 : 1);
    });
