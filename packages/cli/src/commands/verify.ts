import { Command, Option } from 'commander';
import { withBackupRing } from '../commands.js';
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
      const report = await withBackupRing(settingsOf(o), o.sr, (ring) => ring.verify());
      const records = report.records.map((r) => ({
        seq: r.seq,
        ok: r.ok,
        ...(r.ok ? {} : { error: r.error ?? r.code ?? 'damaged' }),
      }));
      if (o.json) ctx.io.out(JSON.stringify({ ok: report.ok, records }));
      else
        for (const r of records) ctx.io.out(`seq ${r.seq}: ${r.ok ? 'ok' : `DAMAGED: ${r.error}`}`);
      ctx.exit(report.ok ? 0 : 1);
    });
