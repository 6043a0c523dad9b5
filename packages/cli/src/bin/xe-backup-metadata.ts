import { backup, keepOf, parse } from '../commands.js';
import { connectionFlags, resolveSettings, UsageError } from '../config.js';
import { ABORTED, confirm } from '../process/confirm.js';
import { errorLine, exitCodeOf, type Io, stdio } from '../output.js';

const USAGE = `usage: xe-backup-metadata [-h] [-c] [-i] [-u SR_UUID] [-k N] [-n] [-f] [-v] [-y]
 -h  this help
 -c  create the Pool Metadata Backup VDI when it is missing
 -i  re-initialise the backup ring (destroys the backups on it; asks unless -y)
 -u  the SR to back up to (default: the pool's default SR)
 -k  how many backups to keep (default 25)
 -n  only find the backup VDI and print its uuid, then stop
 -f  accepted for compatibility: the ring needs no fsck or forced remount
 -v  verbose
 -y  answer yes to questions
Connection settings come from XSMETA_URL, XSMETA_USERNAME, XSMETA_PASSWORD(_FILE),
XSMETA_INVENTORY, XSMETA_DEV_DIR, XSMETA_STATE_DIR (see 'xsmeta --help').
Exit 0 on success, 3 when the backup VDI does not exist and -c was not given, 1 otherwise.`;

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
    if (values.d) {
      // Upstream's -d opens a shell on the mounted backup disk; xsmeta never mounts it.
      io.err(
        "xe-backup-metadata: -d is not supported: xsmeta never mounts the backup disk; use 'xsmeta list' or 'xsmeta verify' to look at the backups. Nothing was done.",
      );
      return 1;
    }
    const s = resolveSettings(connectionFlags({}));
    if (values.i && !values.n && !values.y) {
      const on = values.u ? `on SR ${String(values.u)}` : "on the pool's default SR";
      if (!(await confirm(`Re-initialising destroys every backup ${on}.`))) {
        io.err(ABORTED);
        return 1;
      }
    }
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
    if (values.n) {
      io.out(r.vdiUuid);
      return 0;
    }
    if (r.createdVdi) io.err(`Created the Pool Metadata Backup VDI ${r.vdiUuid} on SR ${r.srUuid}`);
    if (values.v)
      io.err(
        `Backed up ${r.vmCount} VM(s) and ${r.templateCount} template(s): ${r.rawBytes} bytes stored in ${r.storedBytes}`,
      );
    io.out(`Backup ${r.date} written to VDI ${r.vdiUuid} (seq ${r.seq})`);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`xe-backup-metadata: ${e.message}\n${USAGE}`);
      return 1;
    }
    io.err(errorLine('xe-backup-metadata', e));
    return exitCodeOf(e) === 3 ? 3 : 1;
  }
}
