import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { myOwner, ownerGone, parseOwner } from './owner.js';
import { onCleanup } from './signals.js';

export class LockError extends Error {
  readonly code = 'BACKUP_LOCKED';
}

/** How long `--wait` waits for another backup of the SR by default: 30 minutes. */
const DEFAULT_WAIT_S = 30 * 60;

/** The bound of `--wait`: XSMETA_LOCK_WAIT_SECONDS, else 30 minutes. */
export function lockWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.XSMETA_LOCK_WAIT_SECONDS);
  return (Number.isFinite(s) && s >= 0 ? s : DEFAULT_WAIT_S) * 1000;
}

/** A lock file as one read of one file: its inode (what a take-over claims) and its text. */
function readLock(path: string): { ino: number; text: string } | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    return { ino: fstatSync(fd).ino, text: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/**
 * A lock (or claim) names no live owner: its process is gone, or it names none at all (empty,
 * cut short by a full disk or a kill between create and write, or unreadable). Another host's
 * owner is not ours to judge: live.
 */
function stale(text: string): boolean {
  const o = parseOwner(text);
  return o === null || ownerGone(o);
}

function gone(path: string): void {
  rmSync(path, { force: true });
}

/**
 * Takes over the stale lock file `path` whose inode is `ino`, atomically: only the process that
 * creates the claim file `<lock>.claim-<ino>-<n>` may replace that inode, and it does so with
 * one rename. A claim is made by link(), so it exists only complete; a claim whose process
 * died (killed mid-take-over) is itself stale, and the next claim takes the next number `n`:
 * a claim is only made while every lower one names a dead process, so at most one live
 * process holds a claim on an inode. The claimant then reads the lock again: still that
 * inode, still stale, it renames its own complete file over it (never a moment without a
 * lock file, so no process can create one beside it); otherwise it lets go and looks again.
 */
function takeOver(dir: string, name: string, ino: number, mine: string): 'held' | 'retry' {
  const prefix = `${name}.claim-${ino}-`;
  const claims = readdirSync(dir)
    .filter((n) => n.startsWith(prefix))
    .map((n) => Number(n.slice(prefix.length)))
    .filter((n) => Number.isInteger(n) && n > 0);
  const top = Math.max(0, ...claims);
  if (top > 0) {
    const c = readLock(join(dir, `${prefix}${top}`));
    if (c && !stale(c.text)) return 'retry'; // another run is taking it over right now
  }
  const claim = join(dir, `${prefix}${top + 1}`);
  try {
    linkSync(mine, claim);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'retry';
    throw e;
  }
  const path = join(dir, name);
  const now = readLock(path);
  if (!now || now.ino !== ino || !stale(now.text)) {
    gone(claim);
    return 'retry';
  }
  renameSync(mine, path);
  gone(claim);
  return 'held';
}

/**
 * Files a dead process left beside the SR's lock: its own lock file not yet linked, its
 * claims. Removed only while holding the lock, and only those that name a process now gone.
 */
function sweep(dir: string, name: string): void {
  for (const n of readdirSync(dir)) {
    if (!n.startsWith(`${name}.claim-`) && !n.startsWith(`.${name}.`)) continue;
    // A file being written is empty for a moment: only one that names a dead process goes,
    // in its text or, for an unfinished one of ours, in its name (`.<lock>.<pid>.<random>`).
    const f = readLock(join(dir, n));
    const pid = Number(n.split('.').at(-2));
    const o =
      (f && parseOwner(f.text)) ??
      (n.startsWith('.') && Number.isInteger(pid) && pid > 0 ? { host: hostname(), pid } : null);
    if (o && ownerGone(o)) gone(join(dir, n));
  }
}

/**
 * An exclusive lock per SR in the state directory, naming its holder (see process/owner.ts).
 *
 * Made without a moment where it is empty or half-written: the holder's record is written to a
 * file of its own first, then link()ed as `locks/backup-<SR>.lock` (fails if one exists). A
 * lock that names no live process (its process is gone, or it is empty or unreadable) is
 * stale and taken over atomically (see takeOver), so of many runs that find the same stale
 * lock exactly one gets it. We chose link()/rename() over flock(): Node has no flock without
 * a native addon, and a file naming its holder also tells the operator who holds it.
 *
 * `wait`: poll every 250 ms until the lock is free, for at most `waitMs` (lockWaitMs), then
 * fail with BACKUP_LOCKED. Released once, and only while the file is still this run's; also
 * on a signal, after the run's other clean-ups.
 */
export async function lockSr(
  stateDir: string,
  srUuid: string,
  wait: boolean,
  waitMs = lockWaitMs(),
): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  const release = await takeLock(join(stateDir, 'locks'), `backup-${srUuid}.lock`, (who) => {
    if (!wait)
      throw new LockError(
        `another backup of SR ${srUuid} is running (${who}): wait for it, or pass --wait`,
      );
    if (Date.now() >= deadline)
      throw new LockError(
        `another backup of SR ${srUuid} is still running (${who}) after waiting ${waitMs / 1000} s: try again later (XSMETA_LOCK_WAIT_SECONDS sets how long --wait waits)`,
      );
    return Math.min(250, Math.max(0, deadline - Date.now()));
  });
  // whenHeld never gives up without throwing: the lock is ours.
  return release!;
}

/**
 * The lock file `dir/name`, made and taken over as lockSr describes. While a live process
 * holds it, `whenHeld(who)` says how many ms to wait before looking again, or null to give up
 * (then null is returned; it may also throw). Released once, and only while the file is still
 * ours; also on a signal, after the run's other clean-ups.
 */
export async function takeLock(
  dir: string,
  name: string,
  whenHeld: (who: string) => number | null,
): Promise<(() => void) | null> {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  const text = `${myOwner()}\n`;
  const mine = join(dir, `.${name}.${process.pid}.${randomBytes(6).toString('hex')}`);
  try {
    // A full disk fails here, before any lock file exists (none is left empty).
    writeFileSync(mine, text, { flag: 'wx', mode: 0o644 });
    for (;;) {
      try {
        linkSync(mine, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = readLock(path);
      if (held === null) continue; // released meanwhile
      if (stale(held.text)) {
        if (takeOver(dir, name, held.ino, mine) === 'held') break;
        // Another run claimed it: it is ours to look at again in a moment.
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      const holder = parseOwner(held.text);
      const waitMs = whenHeld(holder ? `pid ${holder.pid} on ${holder.host}` : 'lock held');
      if (waitMs === null) return null;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  } finally {
    gone(mine);
  }
  sweep(dir, name);
  // Once, and only while the file is still ours (another run may hold it by now).
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(path, 'utf8') === text) gone(path);
    } catch {
      // Already gone.
    }
  };
  const drop = onCleanup(async () => release());
  return () => {
    drop();
    release();
  };
}
