// Start-up: only what `--help` needs is loaded here; each command's modules (the pool client,
// the ring, the event store, the console) are imported when that command runs.
import type { Io } from '../output.js';

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
};

/** Commands whose help text lives in their own module. */
const OWN_HELP: Record<string, () => Promise<string>> = {
  repair: async () => (await import('../repair.js')).REPAIR_HELP,
  keys: async () => (await import('../keys.js')).KEYS_HELP,
};

/**
 * Plain output for help, before the output module (and what it loads) is needed; a reader
 * gone (`xsmeta --help | head -1`) ends it quietly, as the output module does.
 */
const plain = (l: string): void => {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
  if (!process.stdout.destroyed) process.stdout.write(`${l}\n`);
};

export async function main(argv: string[], io?: Io): Promise<number> {
  const [cmd = '', ...rest] = argv;
  if (cmd === '' || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    (io?.out ?? plain)(HELP['']!);
    return cmd === '' ? 2 : 0;
  }
  if ((rest.includes('--help') || rest.includes('-h')) && (cmd in HELP || cmd in OWN_HELP)) {
    (io?.out ?? plain)(HELP[cmd] ?? (await OWN_HELP[cmd]!()));
    return 0;
  }
  const { errorLine, exitCodeOf, stdio } = await import('../output.js');
  const to = io ?? stdio;
  if (rest.includes('--help') || rest.includes('-h')) {
    to.err(`xsmeta: unknown command ${cmd}; run 'xsmeta --help'`);
    return 2;
  }
  try {
    return await dispatch(cmd, rest, to);
  } catch (e) {
    to.err(errorLine('xsmeta', e));
    return exitCodeOf(e);
  }
}

async function dispatch(cmd: string, rest: string[], io: Io): Promise<number> {
  switch (cmd) {
    case 'backup':
      return (await import('../commands.js')).cmdBackup(rest, io);
    case 'list':
      return (await import('../commands.js')).cmdList(rest, io);
    case 'verify':
      return (await import('../commands.js')).cmdVerify(rest, io);
    case 'restore':
      return (await import('../commands.js')).cmdRestore(rest, io);
    case 'schedule':
      return (await import('../schedule.js')).cmdSchedule(rest, io);
    case 'history':
      return (await import('../commands.js')).cmdHistory(rest, io);
    case 'legacy':
      return (await import('../legacy.js')).cmdLegacy(rest, io);
    case 'repair':
      return (await import('../repair.js')).cmdRepair(rest, io);
    case 'keys':
      return (await import('../keys.js')).cmdKeys(rest, io);
    case 'console': {
      // A console on a terminal is interactive even inside a CI job: Ink must draw every frame.
      if (process.stdout.isTTY) process.env.CI = 'false';
      return (await import('../console.js')).cmdConsole(rest, io);
    }
    default: {
      const { UsageError } = await import('../config.js');
      throw new UsageError(`unknown command ${cmd}; run 'xsmeta --help'`);
    }
  }
}
