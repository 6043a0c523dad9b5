import { backup, keepOf, parse, partialBackup } from '../commands.js';
import { connectionFlags, resolveSettings, UsageError } from '../config.js';
import { errorLine, exitCodeOf, type Io, stdio } from '../output.js';

const USAGE = `usage: xe-backup-metadata [-h] [-c] [-i] [-u SR_UUID] [-k N] [-n] [-f] [-v] [-y]
 -h  this help
 -c  create the Pool Metadata Backup VDI when it is missing (with -n too)
 -i  re-initialise the backup ring (destroys the backups on it; asks unless -y)
 -u  the SR to back up to (default: the pool's default SR)
 -k  how many backups to keep (default 25)
 -n  only find the backup VDI and print its uuid, then stop
 -f  accepted for compatibility: the ring needs no fsck or forced remount
 -v  verbose
 -y  answer yes to questions
Connection settings come from XSMETA_URL, XSMETA_USERNAME, XSMETA_PASSWORD(_FILE),
XSMETA_INVENTORY, XSMETA_DEV_DIR, XSMETA_STATE_DIR, XSMETA_SOCKET (see 'xsmeta --help'); on a
pool host with none of them set, xapi's local socket is used as local root, as xe does.
Exit 0 on success, 3 when the backup VDI does not exist and -c was not given, 4 when the
backup was written but left out VMs that xapi kept busy (named on stderr), 1 otherwise.`;

/** Upstream-compatible `xe-backup-metadata` over the ring (CONTRACT.md). */
export async function main(argv: string[], io: Io = stdio): Promise<number> {
  try {
    const { values } = parse(argv, {
      h: { type: 'boolean', short: 'h' },
      c: { type: 'boolean', short: 'c' },
      i: { type: 'boolean', short: 'i' },
      u: { type: 'string', short: 'u' },
      k: { type: 'string', short: 'k' },
      n: { type: 'boolean', short: 'n' },
      f: { type: 'boolean', short: 'f' },
      v: { type: 'boolean', short: 'v' },
      y: { type: 'boolean', short: 'y' },
      d: { type: 'boolean', short: 'd' },
    });
    if (values.h) {
      io.out(USAGE);
      return 0;
    }
    if (values.f)
      io.err(
        'xe-backup-metadata: -f has no effect: the backup disk is a checksummed ring, never fsck-ed or mounted',
      );
    if (values.d)
      io.err(
        'xe-backup-metadata: -d has no effect: xsmeta never mounts the backup disk, so there is nothing to keep mounted',
      );
    if (values.i && !values.y && process.stdin.isTTY) {
      const { confirm } = await import('../commands.js');
      if (!(await confirm(io, 'Re-initialising destroys every backup on this disk.'))) return 1;
    }
    const s = resolveSettings(connectionFlags({}));
    const r = await backup(
      s,
      {
        srUuid: values.u as string | undefined,
        create: values.c === true,
        keep: keepOf(values.k),
        reinit: values.i === true,
        findOnly: values.n === true,
        wait: false,
      },
      io,
    );
    if (r.createdVdi) io.err(`Created the Pool Metadata Backup VDI ${r.vdiUuid} on SR ${r.srUuid}`);
    if (values.n) {
      io.out(r.vdiUuid);
      return 0;
    }
    if (values.v)
      io.err(
        `Backed up ${r.vmCount} VM(s) and ${r.templateCount} template(s): ${r.rawBytes} bytes stored in ${r.storedBytes}`,
      );
    io.out(`Backup ${r.date} written to VDI ${r.vdiUuid} (seq ${r.seq})`);
    return partialBackup(r, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`xe-backup-metadata: ${e.message}\n${USAGE}`);
      return 1;
    }
    io.err(errorLine('xe-backup-metadata', e));
    return exitCodeOf(e) === 3 ? 3 : 1;
  }
}
