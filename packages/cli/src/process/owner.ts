import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Who holds something: the SR's lock file names its holder, and a VBD's or an unfinished
 * copy's other_config (`xsmeta-owner`) its creator, so that a later run can tell a stale one.
 * JSON: this host, its boot, the process and when it started.
 */
export interface Owner {
  host: string;
  pid: number;
  boot?: string | null;
  start?: string | null;
}

/** Whether a process of this host is alive (one of another user's is). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A file of /proc, or null where there is none (not Linux, no such process). */
function proc(path: string): string | null {
  try {
    return readFileSync(`/proc/${path}`, 'utf8');
  } catch {
    return null;
  }
}

/** When a process started (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid. */
function startTime(pid: number): string | null {
  const stat = proc(`${pid}/stat`);
  return stat === null ? null : (stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null);
}

let bootId: string | null | undefined;
/** This boot of this host (Linux), read when first needed. */
function thisBoot(): string | null {
  if (bootId === undefined) bootId = proc('sys/kernel/random/boot_id')?.trim() ?? null;
  return bootId;
}

let me: string | undefined;
/** This process as an Owner (JSON), made when first needed (not at start-up). */
export function myOwner(): string {
  me ??= JSON.stringify({
    host: hostname(),
    boot: thisBoot(),
    pid: process.pid,
    start: startTime(process.pid),
  } satisfies Owner);
  return me;
}

/** An owner as recorded; a lock file of an older xsmeta holds `PID HOST`. */
export function parseOwner(text: string): Owner | null {
  try {
    const o = JSON.parse(text) as Partial<Owner> | null;
    return typeof o?.host === 'string' && typeof o.pid === 'number' ? (o as Owner) : null;
  } catch {
    const [pid, host] = text.trim().split(' ');
    return host && /^\d+$/.test(pid ?? '') ? { host, pid: Number(pid) } : null;
  }
}

/**
 * Whether the process an owner names is gone: on this host, and either this host has
 * rebooted since, or no such process runs, or the pid now belongs to a later process.
 * Another host's (or an owner that cannot be read) is not ours to judge: false.
 */
export function ownerGone(o: Owner | null): boolean {
  if (!o || o.host !== hostname()) return false;
  const boot = thisBoot();
  if (o.boot && boot !== null && o.boot !== boot) return true;
  if (!processAlive(o.pid)) return true;
  const now = startTime(o.pid);
  return !!o.start && now !== null && now !== o.start;
}
