import { cmdBackup, cmdHistory, cmdList, cmdRestore, cmdVerify } from '../commands.js';
import { UsageError } from '../config.js';
import { cmdKeys, KEYS_HELP } from '../keys.js';
import { OFFSITE_HELP } from '../offsite/help.js';
import { errorLine, exitCodeOf, type Io, stdio } from '../output.js';
import { cmdRepair, REPAIR_HELP } from '../repair.js';
import { cmdSchedule } from '../schedule.js';

const CONNECTION = `Connection (flag / environment / default):
  --url URL               XSMETA_URL             pool master, e.g. https://pool-master
  --username USER         XSMETA_USERNAME        root
  --password-file FILE    XSMETA_PASSWORD_FILE   (or XSMETA_PASSWORD; prompts on a terminal)
  --inventory FILE        XSMETA_INVENTORY       /etc/xensource-inventory
  --dev-dir DIR           XSMETA_DEV_DIR         /dev
  --state-dir DIR         XSMETA_STATE_DIR       /var/lib/xsmeta, else $XDG_STATE_HOME/xsmeta
  --socket PATH           XSMETA_SOCKET          /var/lib/xcp/xapi
With no URL and xapi's local socket present (a pool host), the commands connect there as
local root, with no password, as xe does.`;

const HELP: Record<string, string> = {
  '': `usage: xsmeta <command> [options]

Back up and restore the VM metadata of a XenServer / XCP-ng pool.

Commands:
  backup     back up the pool's metadata to an SR's Pool Metadata Backup disk
  list       list the backups on an SR, newest first
  verify     check every backup's checksums
  restore    restore VM metadata from a backup
  schedule   show or set the backup schedule (daily, weekly, monthly, never)
  history    show the recorded events
  legacy     list or convert the backups of the old xe-backup-metadata (ext3)
  repair     rebuild the backup disk's root (index) from its records
  keys       create a key pair for signed backups (keys init)
  export     write one backup as a checksummed copy file; import puts one into a ring
  copy       mirror an SR's backups into a folder (off-pool copies)
  console    the console (Backup, Restore and Update)

Run 'xsmeta <command> --help' for its options.

${CONNECTION}`,
  backup: `usage: xsmeta backup [--sr UUID] [--create] [--keep N] [--wait] [--json]
  --sr UUID    the SR to back up to (default: the pool's default SR)
  --create     create the Pool Metadata Backup VDI when missing (500 MiB)
  --keep N     keep the newest N backups (default 25)
  --wait       wait (up to 30 min, XSMETA_LOCK_WAIT_SECONDS) for another backup of the same SR
  --json       print the result as one JSON document
Exit 0 on success, 3 when the SR has no backup VDI and --create was not given, 4 when the
backup was written but left out VMs xapi kept busy (named on stderr), 1 otherwise.`,
  list: "usage: xsmeta list [--sr UUID] [--json]\n  List the backups on the SR (default: the pool's default SR), newest first.",
  verify:
    'usage: xsmeta verify [--sr UUID] [--json]\n  Check every backup record; exit 0 only when all verify.',
  restore: `usage: xsmeta restore [--sr UUID] [--date YYYY-MM-DD-HH-MM-SS] [--mode sr|all] [--dry-run] [--force] [--yes] [--json]
  --mode sr     only the VMs with a disk on the SR; all (default): every VM and custom template
  --dry-run     every check, no change to the pool
  --force       replace existing VMs, skip missing disks (vm-import --force)
  --yes         do not ask for confirmation
Ends with 'Restored N VM(s), and M error(s)'; exit status M (at most 125).`,
  schedule: `usage: xsmeta schedule [daily|weekly|monthly|never|run] [--json]
  With a frequency: sets it (scheduled backups go to the pool's default SR at 02:00 local
  time: daily, on Sundays, or on the 1st) and installs a cron entry in $XSMETA_CRON_DIR
  (default /etc/cron.d). 'run': runs a due backup (what cron calls). No argument: shows it.`,
  history:
    'usage: xsmeta history [--json]\n  The recorded events (backups, restores, schedule changes), oldest first.',
  legacy: `usage: xsmeta legacy list|convert [--sr UUID] [--vdi VDI_UUID] [--date DATE] [--json]
  Backups written by the old xe-backup-metadata (an ext3 filesystem on a VDI), read in user
  space, never mounted. Running this command allows reading them (as -o does upstream); any
  guest can forge such a disk, so only one is trusted: --vdi names it, else the SR's own
  backup VDI when it holds one, else the single candidate found on the SR (several: refused).
  list      the legacy backups, newest first, with their VM counts
  convert   copy them (all, or --date DATE) into the SR's ring, oldest first, each keeping
            its date, marked converted. Nothing is evicted: dates already there, or beyond
            the ring's count, are skipped and reported. When the legacy disk is the backup
            VDI itself, a verified copy of it is kept as a new VDI first.
  --sr UUID   the SR (default: the pool's default SR)`,
  console: 'usage: xsmeta console\n  The console: arrow keys, Enter and Esc.',
  repair: REPAIR_HELP,
  keys: KEYS_HELP,
  export: OFFSITE_HELP.export!,
  import: OFFSITE_HELP.import!,
  copy: OFFSITE_HELP.copy!,
};
HELP.restore += `\n${OFFSITE_HELP.restoreFrom}`;

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  const [cmd = '', ...rest] = argv;
  if (cmd === '' || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    io.out(HELP['']!);
    return cmd === '' ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    if (!(cmd in HELP)) {
      io.err(`xsmeta: unknown command ${cmd}; run 'xsmeta --help'`);
      return 2;
    }
    io.out(HELP[cmd]!);
    return 0;
  }
  try {
    switch (cmd) {
      case 'backup':
        return await cmdBackup(rest, io);
      case 'list':
        return await cmdList(rest, io);
      case 'verify':
        return await cmdVerify(rest, io);
      case 'restore':
        if (rest.some((a) => a === '--from' || a.startsWith('--from=')))
          return await (await import('../offsite/commands.js')).cmdRestoreFrom(rest, io);
        return await cmdRestore(rest, io);
      case 'export':
      case 'import':
      case 'copy': {
        const m = await import('../offsite/commands.js');
        return await { export: m.cmdExport, import: m.cmdImport, copy: m.cmdCopy }[cmd](rest, io);
      }
      case 'schedule':
        return await cmdSchedule(rest, io);
      case 'history':
        return await cmdHistory(rest, io);
      case 'legacy': {
        const { cmdLegacy } = await import('../legacy.js');
        return await cmdLegacy(rest, io);
      }
      case 'repair':
        return await cmdRepair(rest, io);
      case 'keys':
        return await cmdKeys(rest, io);
      case 'console': {
        // A console on a terminal is interactive even inside a CI job: Ink must draw every frame.
        if (process.stdout.isTTY) process.env.CI = 'false';
        const { cmdConsole } = await import('../console.js');
        return await cmdConsole(rest, io);
      }
      default:
        throw new UsageError(`unknown command ${cmd}; run 'xsmeta --help'`);
    }
  } catch (e) {
    io.err(errorLine('xsmeta', e));
    return exitCodeOf(e);
  }
}
