import { Command, Option } from 'commander';
import { type Declare, keep, once, settingsOf, uuid, withConnection } from './options.js';

/** The off-site copy commands load their module (and the age library) only when they run. */
const offsite = () => import('../offsite/commands.js');

const sr = () =>
  new Option('--sr <UUID>', "the SR (default: the pool's default SR)").argParser(
    once('--sr', uuid('--sr')),
  );
const encryptTo = () =>
  new Option(
    '--encrypt-to <RECIPIENT>',
    'encrypt the record to an age X25519 recipient (age1…); the header stays readable',
  ).argParser(once('--encrypt-to', String));

/** `xsmeta export`: one backup as a single self-describing, checksummed file. */
export const exportCommand: Declare = (ctx) =>
  withConnection(
    new Command('export')
      .description('write one backup as a self-describing, checksummed copy file')
      .addOption(sr())
      .addOption(
        new Option('--seq <N>', 'the backup, by its seq as `xsmeta list` shows it').argParser(
          once('--seq', String),
        ),
      )
      .addOption(
        new Option('--out <FILE>', 'where to write it (- for stdout, the default)').argParser(
          once('--out', String),
        ),
      )
      .addOption(encryptTo()),
  ).action(async (o: Record<string, string | undefined>) => {
    ctx.exit(await (await offsite()).cmdExport(o, settingsOf(o), ctx.io));
  });

/** `xsmeta import FILE`: puts the backup a copy file holds into the SR's ring. */
export const importCommand: Declare = (ctx) =>
  withConnection(
    new Command('import')
      .description("put the backup a copy file holds into an SR's ring")
      .argument('<FILE>', 'a copy file written by xsmeta export or xsmeta copy')
      .addOption(sr())
      .option('--create', 'create the Pool Metadata Backup VDI when missing')
      .addOption(
        new Option('--identity <FILE>', 'the age identity of an encrypted copy file').argParser(
          once('--identity', String),
        ),
      ),
  ).action(async (file: string, o: Record<string, string | boolean | undefined>) => {
    ctx.exit(await (await offsite()).cmdImport(file, o, settingsOf(o), ctx.io));
  });

/** `xsmeta copy --to DIR`: mirrors the SR's backups into a folder, keeping the newest N. */
export const copyCommand: Declare = (ctx) =>
  withConnection(
    new Command('copy')
      .description("mirror an SR's backups into a folder (an off-pool copy), skipping those there")
      .addOption(sr())
      .addOption(
        new Option('--to <DIR>', 'the folder (an NFS or SMB mount in practice)')
          .argParser(once('--to', String))
          .makeOptionMandatory(),
      )
      .addOption(
        new Option('--keep <N>', "keep the newest N of this SR's copies there").argParser(
          once('--keep', keep),
        ),
      )
      .addOption(encryptTo()),
  ).action(async (o: Record<string, string | number | undefined>) => {
    ctx.exit(await (await offsite()).cmdCopy(o, settingsOf(o), ctx.io));
  });
