import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ArchivePort, Attachment, DiskPort, PoolPort, SrInfo, VmInfo } from '@xsmeta/core';
import { openFileDevice, Ring, readArchive, writeArchive } from '@xsmeta/vdi-store';
import { backupVdiUuid, XapiClient, XapiError } from '@xsmeta/xapi';
import { ConfigError, readInventory, type Settings } from './config.js';

/** Work that must run however the process ends (VBD unplug/destroy, lock release). */
const cleanups = new Set<() => Promise<void>>();
let signalsHooked = false;
/** Set once a signal arrived: nothing new may be created on the pool after that. */
let exiting = false;
/** The signal that set `exiting`. */
let signalled: string | undefined;
/** The signal that ended this process's work, if one arrived (nothing more is recorded then). */
export const signalReceived = (): string | undefined => signalled;
/** A signal's clean-up is under way (and was announced). */
let cleaning = false;
/** How long a signal's clean-up may take in all before the process exits anyway. */
const CLEANUP_MS = Number(process.env.XSMETA_CLEANUP_MS ?? 60_000);

export function onCleanup(fn: () => Promise<void>): () => void {
  if (!signalsHooked) {
    signalsHooked = true;
    // Kept for good: a second Ctrl-C during the clean-up must not kill it half way (the VBD
    // would stay plugged). SIGKILL still ends the process; the next run removes what is left.
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
      process.on(sig, () => onSignal(sig));
  }
  cleanups.add(fn);
  return () => cleanups.delete(fn);
}

/**
 * Runs the clean-ups last registered first, one at a time, until none is left (also those
 * registered by calls that were in flight): a device is closed before the VBD under it is
 * unplugged, a VBD destroyed before its VDI, a lock released last. A step that hangs (a dead
 * pool master, a stuck device) does not keep the process: after CLEANUP_MS it exits, and the
 * next run removes what is left. Further signals meanwhile are reported, not obeyed.
 */
function onSignal(sig: 'SIGINT' | 'SIGTERM' | 'SIGHUP'): void {
  if (exiting) {
    if (cleaning) process.stderr.write(`${sig}: still cleaning up ...\n`);
    return;
  }
  exiting = true;
  signalled = sig;
  // Said only when there is something to undo (a signal at a prompt or while listing SRs
  // plugs nothing).
  cleaning = cleanups.size > 0;
  if (cleaning) process.stderr.write(`\n${sig}: cleaning up (unplugging the backup disk) ...\n`);
  void (async () => {
    const deadline = Date.now() + CLEANUP_MS;
    for (let c = [...cleanups].at(-1); c; c = [...cleanups].at(-1)) {
      cleanups.delete(c);
      const done = await Promise.race([
        c().then(
          () => true,
          () => true,
        ),
        new Promise<false>((r) => setTimeout(r, Math.max(0, deadline - Date.now()), false).unref()),
      ]);
      if (!done) {
        process.stderr.write(
          `${sig}: the clean-up took longer than ${CLEANUP_MS / 1000} s: exiting; the next run removes what is left\n`,
        );
        break;
      }
    }
    process.exit(sig === 'SIGINT' ? 130 : 143);
  })();
}

/**
 * `res`, whose close() a signal's clean-up also calls (before the VBD under it is unplugged:
 * xapi will not unplug a device the control domain holds open).
 */
export function closeOnSignal<T extends { close(): Promise<void> }>(res: T): T {
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= res.close().finally(() => drop());
    return closing;
  };
  const drop = onCleanup(close);
  return new Proxy(res, {
    get(target, key) {
      if (key === 'close') return close;
      const v: unknown = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
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

/**
 * A process that holds something: the SR's lock file holds it, and a VBD's other_config
 * (`xsmeta-owner`), so that a later run can tell a stale one. JSON: this host, its boot, the
 * process and when it started.
 */
export interface Owner {
  host: string;
  pid: number;
  boot?: string | null;
  start?: string | null;
}

let me: string | undefined;
/** This process as an Owner, written when first needed (not at start-up). */
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

async function promptPassword(user: string): Promise<string> {
  if (!process.stdin.isTTY)
    throw new ConfigError(
      'NO_PASSWORD',
      'no password: set XSMETA_PASSWORD_FILE, XSMETA_PASSWORD or --password-file',
    );
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  const write = (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput;
  (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
    if (s.includes(`Password for ${user}`)) write.call(rl, s);
  };
  const answer = await new Promise<string>((resolve) =>
    rl.question(`Password for ${user}: `, resolve),
  );
  rl.close();
  process.stderr.write('\n');
  return answer;
}

export async function connect(s: Settings): Promise<XapiClient> {
  if (!s.url)
    throw new ConfigError(
      'NO_URL',
      'no pool to talk to: set --url https://POOL-MASTER or XSMETA_URL',
    );
  const password = s.password ?? (await promptPassword(s.username));
  const insecure = process.env.XSMETA_TLS_INSECURE === '1';
  const fingerprint = process.env.XSMETA_TLS_FINGERPRINT;
  return XapiClient.connect({
    url: s.url,
    username: s.username,
    password,
    ...(insecure || fingerprint
      ? {
          tls: {
            ...(insecure ? { rejectUnauthorized: false } : {}),
            ...(fingerprint ? { fingerprint } : {}),
          },
        }
      : {}),
  });
}

type R = Record<string, unknown>;

/** PoolPort over XAPI: the calls of reference/xapi.md. */
export class XapiPool implements PoolPort {
  constructor(
    readonly xapi: XapiClient,
    private readonly settings: Settings,
  ) {}

  async pool() {
    const [p] = (await this.xapi.getAllRecords<R>('pool')).values();
    if (!p) throw new XapiError('XAPI_PROTOCOL', ['pool'], 'the pool has no pool object');
    const def = p.default_SR as string;
    const defaultSrUuid =
      def && def !== 'OpaqueRef:NULL'
        ? await this.xapi.call<string>('SR.get_uuid', def).catch(() => null)
        : null;
    return { uuid: p.uuid as string, defaultSrUuid };
  }

  async srs(): Promise<SrInfo[]> {
    const srs = await this.xapi.getAllRecords<R>('SR');
    const vdis = await this.xapi.getAllRecords<R>('VDI');
    return [...srs.entries()]
      .filter(([, s]) => s.content_type !== 'iso')
      .map(([ref, s]) => ({
        uuid: s.uuid as string,
        name: String(s.name_label ?? ''),
        description: String(s.name_description ?? ''),
        type: String(s.type ?? ''),
        vdis: [...vdis.values()]
          .filter((v) => v.SR === ref)
          .map((v) => ({
            uuid: v.uuid as string,
            name: String(v.name_label ?? ''),
            description: String(v.name_description ?? ''),
            readOnly: v.read_only === true,
          })),
      }));
  }

  backupVdiUuid(srUuid: string): string {
    return backupVdiUuid(srUuid);
  }

  async findVdi(uuid: string) {
    let ref: string;
    try {
      ref = await this.xapi.call<string>('VDI.get_by_uuid', uuid);
    } catch (e) {
      if (e instanceof XapiError && e.code === 'UUID_INVALID') return null;
      throw e;
    }
    const v = await this.xapi.getRecord<R>('VDI', ref);
    const srUuid = await this.xapi.call<string>('SR.get_uuid', v.SR);
    return {
      uuid,
      name: String(v.name_label),
      srUuid,
      virtualSize: Number(v.virtual_size),
      type: String(v.type),
    };
  }

  async createBackupVdi(srUuid: string, size: number) {
    const sr = await this.xapi.call<string>('SR.get_by_uuid', srUuid);
    const ref = await this.xapi.call<string>('VDI.create', {
      name_label: 'Pool Metadata Backup',
      name_description: 'xsmeta: ring of VM metadata backups',
      SR: sr,
      virtual_size: String(size),
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    });
    const uuid = await this.xapi.call<string>('VDI.get_uuid', ref);
    return { uuid, name: 'Pool Metadata Backup', srUuid, virtualSize: size, type: 'user' };
  }

  async copyVdi(vdiUuid: string, nameLabel: string) {
    const src = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    const rec = await this.xapi.getRecord<R>('VDI', src);
    const size = Number(rec.virtual_size);
    // Named as unfinished until it verifies: a run killed mid-copy leaves no "kept" copy.
    if (exiting) throw new Error('interrupted: not copying the disk');
    const creating = this.xapi.call<string>('VDI.create', {
      name_label: `${nameLabel} (incomplete copy)`,
      name_description: `byte-for-byte copy of VDI ${vdiUuid}, made by xsmeta before converting it`,
      SR: rec.SR,
      virtual_size: String(size),
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: { 'xsmeta-copy-of': vdiUuid },
      xenstore_data: {},
      sm_config: {},
      tags: [],
    });
    // A copy that did not verify is no copy: removed, the original untouched, also when a
    // signal ends the run, even while VDI.create is in flight (registered before it returns;
    // clean-ups run last-in first, so after the copy's VBDs are gone).
    const destroy = async () => {
      const ref = await creating.catch(() => null);
      if (ref !== null) await this.xapi.call('VDI.destroy', ref).catch(() => {});
    };
    const drop = onCleanup(destroy);
    let uuid: string;
    try {
      const ref = await creating;
      if (exiting) throw new Error('interrupted: not copying the disk');
      uuid = await this.xapi.call<string>('VDI.get_uuid', ref);
      await copyBytes(this, vdiUuid, uuid);
      await this.xapi.call('VDI.set_name_label', ref, nameLabel);
    } catch (e) {
      await destroy();
      throw e;
    } finally {
      drop();
    }
    const srUuid = await this.xapi.call<string>('SR.get_uuid', rec.SR);
    return { uuid, name: nameLabel, srUuid, virtualSize: size, type: 'user' };
  }

  /** VBD on the control domain, plugged; detach() unplugs and destroys it, on every path. */
  async attach(vdiUuid: string, opts: { readOnly: boolean }): Promise<Attachment> {
    const inv = readInventory(this.settings.inventory);
    const dom0Uuid = inv.CONTROL_DOMAIN_UUID;
    if (!dom0Uuid)
      throw new ConfigError(
        'NO_CONTROL_DOMAIN',
        `${this.settings.inventory} has no CONTROL_DOMAIN_UUID`,
      );
    const dom0 = await this.xapi.call<string>('VM.get_by_uuid', dom0Uuid);
    const vdi = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    // A VBD of ours left by a killed run (SIGKILL, power loss) is unplugged and destroyed
    // before a new one is plugged (see removeStaleVbds for which ones are stale).
    await this.removeStaleVbds(vdi, dom0, !opts.readOnly);
    // The clean-up is registered before the VBD is asked for, and waits for each call in
    // flight to settle: a signal at any moment leaves no VBD and no plugged device behind.
    if (exiting) throw new Error('interrupted: not attaching a disk');
    let plugging: Promise<unknown> | null = null;
    let detaching: Promise<void> | null = null;
    const creating = this.xapi.call<string>('VBD.create', {
      VM: dom0,
      VDI: vdi,
      userdevice: 'autodetect',
      bootable: false,
      mode: opts.readOnly ? 'RO' : 'RW',
      type: 'Disk',
      unpluggable: true,
      empty: false,
      other_config: { 'xsmeta-attach': 'true', 'xsmeta-owner': myOwner() },
      qos_algorithm_type: '',
      qos_algorithm_params: {},
    });
    const settled = (p: Promise<unknown>) =>
      p.then(
        () => true,
        () => false,
      );
    // One detach, however many ask (the run, a signal): each waits for the same one, and it
    // stays registered until it is over, so a signal during it waits instead of exiting.
    const detach = () => {
      detaching ??= (async () => {
        const vbd = await creating.catch(() => null);
        if (vbd === null) return;
        if (plugging && (await settled(plugging))) await this.unplug(vbd);
        await this.xapi.call('VBD.destroy', vbd);
      })().finally(() => drop());
      return detaching;
    };
    const drop = onCleanup(detach);
    try {
      const vbd = await creating;
      if (exiting) throw new Error('interrupted: not plugging the disk');
      plugging = this.xapi.call('VBD.plug', vbd);
      await plugging;
      const device = await this.xapi.call<string>('VBD.get_device', vbd);
      return { devicePath: join(this.settings.devDir, device), detach };
    } catch (e) {
      await detach().catch(() => {});
      throw e;
    }
  }

  /**
   * Unplugs a VBD of ours. When xapi refuses a clean unplug (a backend timeout, the device
   * still busy) it is forced: our handles on it are closed by then, and a disk left plugged in
   * the control domain blocks its VDI. Already unplugged is fine; otherwise the first error.
   */
  private async unplug(vbd: string): Promise<void> {
    const detached = (e: unknown) => e instanceof XapiError && e.code === 'DEVICE_ALREADY_DETACHED';
    try {
      await this.xapi.call('VBD.unplug', vbd);
    } catch (e) {
      if (detached(e)) return;
      await this.xapi.call('VBD.unplug_force', vbd).catch((f: unknown) => {
        if (!detached(f)) throw e;
      });
    }
  }

  /**
   * Our VBDs of the VDI, on our control domain, whose process is gone (see ownerGone). One
   * with no owner (an older xsmeta's) only a writer removes: it holds the SR's backup lock.
   */
  private async removeStaleVbds(vdi: string, dom0: string, writer: boolean): Promise<void> {
    for (const vbd of await this.xapi.call<string[]>('VDI.get_VBDs', vdi)) {
      const rec = await this.xapi.getRecord<R>('VBD', vbd);
      const oc = (rec.other_config as Record<string, string> | undefined) ?? {};
      if (oc['xsmeta-attach'] !== 'true' || rec.VM !== dom0) continue;
      const owner = oc['xsmeta-owner'];
      const stale = owner === undefined ? writer : ownerGone(parseOwner(owner));
      if (!stale) continue;
      if (rec.currently_attached) await this.unplug(vbd).catch(() => {});
      await this.xapi.call('VBD.destroy', vbd).catch(() => {});
    }
  }

  dumpDatabase() {
    return this.xapi.dumpDatabase();
  }

  async vms(): Promise<VmInfo[]> {
    const [vms, vbds, vdis, srs] = await Promise.all([
      this.xapi.getAllRecords<R>('VM'),
      this.xapi.getAllRecords<R>('VBD'),
      this.xapi.getAllRecords<R>('VDI'),
      this.xapi.getAllRecords<R>('SR'),
    ]);
    const out: VmInfo[] = [];
    for (const vm of vms.values()) {
      const oc = (vm.other_config ?? {}) as Record<string, string>;
      if (vm.is_control_domain || vm.is_a_snapshot) continue;
      if (vm.is_a_template && (oc.default_template === 'true' || vm.is_default_template === true))
        continue;
      const srUuids = new Set<string>();
      for (const vbdRef of (vm.VBDs as string[]) ?? []) {
        const vbd = vbds.get(vbdRef);
        const vdi = vbd && vdis.get(vbd.VDI as string);
        const sr = vdi && srs.get(vdi.SR as string);
        if (sr) srUuids.add(sr.uuid as string);
      }
      out.push({
        uuid: vm.uuid as string,
        name: String(vm.name_label ?? ''),
        isTemplate: Boolean(vm.is_a_template),
        srUuids: [...srUuids],
      });
    }
    return out.sort(
      (a, b) => Number(a.isTemplate) - Number(b.isTemplate) || a.name.localeCompare(b.name),
    );
  }

  exportMetadata(vmUuid: string) {
    return this.xapi.exportMetadata({ uuid: vmUuid });
  }

  async importMetadata(body: Uint8Array, opts: { force: boolean; dryRun: boolean }) {
    await this.xapi.importMetadata(body, opts);
  }

  async setSrNames(srUuid: string, name: string, description: string) {
    const ref = await this.xapi.call<string>('SR.get_by_uuid', srUuid);
    await this.xapi.call('SR.set_name_label', ref, name);
    await this.xapi.call('SR.set_name_description', ref, description);
  }

  async setVdiNames(vdiUuid: string, name: string, description: string) {
    const ref = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    await this.xapi.call('VDI.set_name_label', ref, name);
    await this.xapi.call('VDI.set_name_description', ref, description);
  }
}

/**
 * Copies a VDI's bytes onto another of at least its size and flushes; then plugs the copy
 * again, read-only, and compares its digest with the original's, read through that fresh
 * device rather than the one just written.
 */
async function copyBytes(pool: XapiPool, from: string, to: string): Promise<void> {
  const chunk = 4 * 1024 * 1024;
  const a = await pool.attach(from, { readOnly: true });
  let want: string;
  let size: number;
  try {
    const src = closeOnSignal(await openFileDevice(a.devicePath, { readOnly: true }));
    try {
      size = src.size;
      const b = await pool.attach(to, { readOnly: false });
      try {
        const dst = closeOnSignal(await openFileDevice(b.devicePath));
        try {
          if (dst.size < size)
            throw new Error(`the copy (${dst.size} bytes) is smaller than the original`);
          const h = createHash('sha256');
          for (let off = 0; off < size; off += chunk) {
            const data = await src.read(off, Math.min(chunk, size - off));
            h.update(data);
            await dst.write(off, data);
          }
          await dst.flush();
          want = h.digest('hex');
        } finally {
          await dst.close();
        }
      } finally {
        await b.detach();
      }
    } finally {
      await src.close();
    }
  } finally {
    await a.detach();
  }
  const c = await pool.attach(to, { readOnly: true });
  try {
    const back = closeOnSignal(await openFileDevice(c.devicePath, { readOnly: true }));
    try {
      const h = createHash('sha256');
      for (let off = 0; off < size; off += chunk)
        h.update(await back.read(off, Math.min(chunk, size - off)));
      if (h.digest('hex') !== want)
        throw new Error(`the copy of VDI ${from} does not read back as written`);
    } finally {
      await back.close();
    }
  } finally {
    await c.detach();
  }
}

export const disk: DiskPort = {
  async open(path, opts) {
    const dev = closeOnSignal(await openFileDevice(path, { readOnly: opts.readOnly }));
    try {
      return await Ring.open(dev, { readOnly: opts.readOnly, expect: opts.expect });
    } catch (e) {
      await dev.close();
      throw e;
    }
  },
  async format(path, id) {
    const dev = closeOnSignal(await openFileDevice(path));
    try {
      return await Ring.format(dev, id);
    } catch (e) {
      await dev.close();
      throw e;
    }
  },
};

export const archive: ArchivePort = {
  write: (parts, opts) => writeArchive(parts, opts),
  read: (bytes) => readArchive(bytes),
};

export const systemClock = { now: () => new Date() };

export class LockError extends Error {
  readonly code = 'BACKUP_LOCKED';
}

/**
 * An exclusive lock per SR in the state directory (O_EXCL), holding pid and host; a lock whose
 * process is gone is taken over. `wait` polls until it is free.
 */
export async function lockSr(stateDir: string, srUuid: string, wait: boolean): Promise<() => void> {
  const dir = join(stateDir, 'locks');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `backup-${srUuid}.lock`);
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      const mine = `${myOwner()}\n`;
      writeSync(fd, mine);
      closeSync(fd);
      // Once, and only while the file is still ours (another run may hold it by now).
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          if (readFileSync(path, 'utf8') === mine) rmSync(path, { force: true });
        } catch {
          // Already gone.
        }
      };
      const drop = onCleanup(async () => release());
      return () => {
        drop();
        release();
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = parseOwner(readFileSync(path, 'utf8'));
      if (ownerGone(holder)) {
        rmSync(path, { force: true });
        continue;
      }
      if (!wait)
        throw new LockError(
          `another backup of SR ${srUuid} is running (${holder ? `pid ${holder.pid} on ${holder.host}` : 'lock held'}): wait for it, or pass --wait`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
