import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  type ArchivePort,
  type Attachment,
  type DiskPort,
  errorCode,
  type PoolPort,
  type SrInfo,
  type VmInfo,
  verifyRecord,
} from '@xsmeta/core';
import {
  type BlockDevice,
  openFileDevice,
  Ring,
  readArchive,
  scanArchive,
  writeArchive,
} from '@xsmeta/vdi-store';
import {
  backupVdiUuid,
  ExportSplitter,
  ovaNetworks,
  readOva,
  XapiClient,
  XapiError,
} from '@xsmeta/xapi';
import { ConfigError, localSocket, readInventory, type Settings } from './config.js';
import { ringKeys } from './keys.js';
import { quietPipes, withCode } from './output.js';
import { myOwner, ownerGone, parseOwner } from './process/owner.js';
import { takeVdiLock } from './remote/lock.js';
import { isRemote, isRemotePath, openRemote, remoteAttachment } from './remote/mode.js';

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
    quietPipes(); // the clean-up's messages must not die on a closed stderr
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
  const socketPath = localSocket(s);
  if (socketPath !== null) {
    // As xe on a pool host: xapi trusts the local socket's peer as root, so no password is
    // asked or sent (ocaml/xapi/xapi_session.ml, login_with_password, Context.preauth).
    return XapiClient.connect({ socketPath, username: s.username, password: '' });
  }
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
    timeoutMs: timeoutMs(),
    ...(insecure || fingerprint
      ? {
          tls: {
            ...(insecure ? { rejectUnauthorized: false } : {}),
            ...(fingerprint ? { fingerprint } : {}),
          },
        }
      : {}),
  }).catch((e: unknown) => {
    throw operatorHint(e);
  });
}

/** The deadline of the connection and of each call: XSMETA_TIMEOUT_MS, else 60 s. */
function timeoutMs(): number {
  const v = process.env.XSMETA_TIMEOUT_MS;
  if (v === undefined || v === '') return 60_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError('BAD_TIMEOUT', `XSMETA_TIMEOUT_MS must be a number of ms, not '${v}'`);
  return n;
}

/** A connection error an operator can act on says how: a certificate to pin, a deadline to raise. */
function operatorHint(e: unknown): unknown {
  if (!(e instanceof XapiError)) return e;
  if (e.code === 'XAPI_TLS' && e.params[1])
    return new XapiError(
      'XAPI_TLS',
      e.params,
      `the pool's certificate is not trusted (${e.params[0]}); if its sha256 fingerprint ${e.params[1]} is the pool's (on the master: openssl x509 -noout -fingerprint -sha256 -in /etc/xensource/xapi-ssl.pem), set XSMETA_TLS_FINGERPRINT=${e.params[1]}`,
      { cause: e },
    );
  if (e.code === 'XAPI_TIMEOUT')
    return new XapiError(
      'XAPI_TIMEOUT',
      e.params,
      `${e.message} (XSMETA_TIMEOUT_MS sets the deadline)`,
      { cause: e },
    );
  return e;
}

type R = Record<string, unknown>;

/**
 * For a read of an object another process may remove: HANDLE_INVALID (xapi's answer for a
 * reference whose object was destroyed: ocaml/xapi/exnHelper.ml maps the database's "missing
 * reference" to it) means it is gone, null; any other error stands.
 */
function unlessGone(e: unknown): null {
  if (e instanceof XapiError && e.code === 'HANDLE_INVALID') return null;
  throw e;
}

/** A VBD of ours that could not be unplugged or destroyed: it stays on the control domain. */
export class VbdLeftError extends Error {
  readonly code = 'VBD_LEFT_BEHIND';
  constructor(
    readonly vbdRef: string,
    readonly vbdUuid: string | null,
    readonly vdiUuid: string,
    step: 'unplug' | 'destroy',
    cause: unknown,
  ) {
    // Without its uuid, `xe vbd-list vdi-uuid=…` names it.
    const id = `uuid=${vbdUuid ?? `<the uuid 'xe vbd-list vdi-uuid=${vdiUuid}' shows>`}`;
    const why = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    const fix =
      step === 'unplug'
        ? `'xe vbd-unplug ${id}' then 'xe vbd-destroy ${id}'`
        : `'xe vbd-destroy ${id}'`;
    super(
      `could not ${step} the backup disk's VBD (${why}): VDI ${vdiUuid} is still ${step === 'unplug' ? 'plugged into' : 'attached to'} the control domain; remove it with ${fix}`,
      { cause },
    );
  }
}

/** PoolPort over XAPI (the classes and calls of xen-api's ocaml/idl/datamodel*.ml). */
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

  /**
   * Every SR of the pool, ISO SRs included: the SR metadata of a backup names them all, as
   * upstream's python3/libexec/backup-sr-metadata.py (SR.get_all_records, no filter) does.
   */
  async srs(): Promise<SrInfo[]> {
    // Only the fields the SR metadata names (a large pool's records are never decoded whole).
    const srs = await this.xapi.getAllRecordsFields('SR', [
      'uuid',
      'name_label',
      'name_description',
      'type',
    ]);
    const vdis = await this.xapi.getAllRecordsFields('VDI', [
      'uuid',
      'name_label',
      'name_description',
      'read_only',
      'SR',
    ]);
    const bySr = new Map<string, SrInfo['vdis']>();
    for (const v of vdis.values()) {
      const list = bySr.get(v.SR) ?? [];
      if (list.length === 0) bySr.set(v.SR, list);
      list.push({
        uuid: v.uuid,
        name: String(v.name_label ?? ''),
        description: String(v.name_description ?? ''),
        readOnly: v.read_only === true,
      });
    }
    return [...srs.entries()].map(([ref, s]) => ({
      uuid: s.uuid,
      name: String(s.name_label ?? ''),
      description: String(s.name_description ?? ''),
      type: String(s.type ?? ''),
      vdis: bySr.get(ref) ?? [],
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
    // Destroyed between the lookup and the read (another run's unfinished copy, say): none.
    const v = await this.xapi.getRecord<R>('VDI', ref).catch(unlessGone);
    if (v === null) return null;
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
      // Its creator, as on our VBDs: a later run removes it if this one dies before it is done.
      other_config: { 'xsmeta-copy-of': vdiUuid, 'xsmeta-owner': myOwner() },
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

  /**
   * Unfinished copies (see copyVdi) on the SR that a dead run left, SIGKILLed or its host lost
   * mid-copy: still named "(incomplete copy)", and their creator is gone (see ownerGone; one
   * with no creator recorded is an older xsmeta's, and the caller holds the SR's lock, under
   * which every copy is made). Their VBDs of ours are unplugged and destroyed, then the VDI.
   * A copy some other VBD uses is left alone. Returns the uuids removed.
   */
  async removeDeadCopies(srUuid: string): Promise<string[]> {
    const sr = await this.xapi.call<string>('SR.get_by_uuid', srUuid);
    const removed: string[] = [];
    for (const [ref, v] of await this.xapi.getAllRecords<R>('VDI')) {
      const oc = (v.other_config as Record<string, string> | undefined) ?? {};
      if (v.SR !== sr || oc['xsmeta-copy-of'] === undefined) continue;
      if (!String(v.name_label ?? '').endsWith(' (incomplete copy)')) continue;
      const owner = oc['xsmeta-owner'];
      if (owner !== undefined && !ownerGone(parseOwner(owner))) continue;
      const vbds: [string, R][] = [];
      for (const vbd of (v.VBDs as string[] | undefined) ?? []) {
        const rec = await this.xapi.getRecord<R>('VBD', vbd).catch(unlessGone);
        if (rec) vbds.push([vbd, rec]);
      }
      const ours = (r: R) =>
        (r.other_config as Record<string, string> | undefined)?.['xsmeta-attach'] === 'true';
      if (!vbds.every(([, r]) => ours(r))) continue;
      for (const [vbd, rec] of vbds) {
        if (rec.currently_attached) await this.unplug(vbd).catch(unlessGone);
        await this.xapi.call('VBD.destroy', vbd).catch(unlessGone);
      }
      await this.xapi.call('VDI.destroy', ref).catch(unlessGone);
      removed.push(String(v.uuid));
    }
    return removed;
  }

  /**
   * A writer first takes the VDI's lock on the pool (remote/lock.ts), then: in remote mode the
   * VDI is only named for the remote device; on a pool host it is plugged into dom0.
   */
  async attach(vdiUuid: string, opts: { readOnly: boolean }): Promise<Attachment> {
    const vdi = await this.xapi.call<string>('VDI.get_by_uuid', vdiUuid);
    const unlock = opts.readOnly ? null : await takeVdiLock(this.xapi, vdi, vdiUuid);
    // Released when the run ends, or on a signal (a kill leaves it to its expiry or owner check).
    const drop = unlock ? onCleanup(unlock) : () => {};
    const release = async () => {
      drop();
      await unlock?.();
    };
    if (isRemote(this.settings))
      return remoteAttachment(this.xapi, vdi, vdiUuid, opts.readOnly, release);
    try {
      const att = await this.attachDom0(vdi, vdiUuid, opts);
      return { ...att, detach: () => att.detach().finally(release) };
    } catch (e) {
      await release();
      throw e;
    }
  }

  /** VBD on the control domain, plugged; detach() unplugs and destroys it, on every path. */
  private async attachDom0(
    vdi: string,
    vdiUuid: string,
    opts: { readOnly: boolean },
  ): Promise<Attachment> {
    const inv = readInventory(this.settings.inventory);
    const dom0Uuid = inv.CONTROL_DOMAIN_UUID;
    if (!dom0Uuid)
      throw new ConfigError(
        'NO_CONTROL_DOMAIN',
        `${this.settings.inventory} has no CONTROL_DOMAIN_UUID`,
      );
    const dom0 = await this.xapi.call<string>('VM.get_by_uuid', dom0Uuid);
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
        let step: 'unplug' | 'destroy' = 'unplug';
        try {
          if (plugging && (await settled(plugging))) await this.unplug(vbd);
          step = 'destroy';
          await this.xapi.call('VBD.destroy', vbd);
        } catch (e) {
          throw await this.leftBehind(vbd, vdiUuid, step, e);
        }
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
   * The error for a VBD that could not be removed: what is left on the control domain and the
   * xe commands that remove it (never a silent leak). On the control domain `unplug_force`
   * is the same call as `unplug` (ocaml/xapi/xapi_vbd.ml), so forcing does not help there.
   */
  private async leftBehind(
    vbd: string,
    vdiUuid: string,
    step: 'unplug' | 'destroy',
    cause: unknown,
  ): Promise<Error> {
    const uuid = await this.xapi.call<string>('VBD.get_uuid', vbd).catch(() => null);
    return new VbdLeftError(vbd, uuid, vdiUuid, step, cause);
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
      // Another run may remove it between the listing and this read (its own clean-up, or its
      // sweep of the same stale VBD): gone is what we wanted.
      const rec = await this.xapi.getRecord<R>('VBD', vbd).catch(unlessGone);
      if (rec === null) continue;
      const oc = (rec.other_config as Record<string, string> | undefined) ?? {};
      if (oc['xsmeta-attach'] !== 'true' || rec.VM !== dom0) continue;
      const owner = oc['xsmeta-owner'];
      const stale = owner === undefined ? writer : ownerGone(parseOwner(owner));
      if (!stale) continue;
      if (rec.currently_attached) await this.unplug(vbd).catch(() => {});
      await this.xapi.call('VBD.destroy', vbd).catch(() => {});
    }
  }

  /** Streamed (the backup writes it into the record chunk by chunk). */
  dumpDatabase() {
    return this.xapi.dumpDatabaseStream();
  }

  async vms(): Promise<VmInfo[]> {
    // One listing at a time, each of only the fields used here: a 5,000-VM pool's VM records
    // decoded whole took 287 MiB.
    const vms = await this.xapi.getAllRecordsFields('VM', [
      'uuid',
      'name_label',
      'is_a_template',
      'is_default_template',
      'is_control_domain',
      'is_a_snapshot',
      'other_config',
      'VBDs',
    ]);
    const vbds = await this.xapi.getAllRecordsFields('VBD', ['VDI']);
    const vdis = await this.xapi.getAllRecordsFields('VDI', ['SR']);
    const srs = await this.xapi.getAllRecordsFields('SR', ['uuid']);
    const out: VmInfo[] = [];
    for (const vm of vms.values()) {
      const oc = vm.other_config ?? {};
      if (vm.is_control_domain || vm.is_a_snapshot) continue;
      if (vm.is_a_template && (oc.default_template === 'true' || vm.is_default_template === true))
        continue;
      const srUuids = new Set<string>();
      for (const vbdRef of vm.VBDs ?? []) {
        const vbd = vbds.get(vbdRef);
        const vdi = vbd && vdis.get(vbd.VDI);
        const sr = vdi && srs.get(vdi.SR);
        if (sr) srUuids.add(sr.uuid);
      }
      out.push({
        uuid: vm.uuid,
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
    // As `xe vm-export --metadata` (include-snapshots defaults to false,
    // ocaml/xapi-cli-server/cli_operations.ml): a restore must not bring back snapshots that
    // still exist, nor fail on them without -f.
    return this.xapi.exportMetadata({ uuid: vmUuid }, { exportSnapshots: false });
  }

  /**
   * `export_metadata?all=true` (no snapshots, no control domain): one request and one pass
   * of locks for the whole pool, split client-side into the per-VM exports xapi would have
   * sent (splitExport follows export.ml's update_table and make_* rules).
   */
  async exportAll(vmUuids: readonly string[]) {
    const body = await this.xapi.exportMetadataStream(
      { all: true },
      { exportSnapshots: false, includeDom0: false },
    );
    // The export (about 33 KiB a VM) goes to a file, unlinked at once, while the splitter
    // indexes it; each VM's export is read back from it when the backup takes it. Memory
    // holds the index only, not the pool's export.
    const dir = mkdtempSync(join(tmpdir(), 'xsmeta-export-'));
    const file = join(dir, 'all.tar');
    const fd = openSync(file, 'w+', 0o600);
    rmSync(dir, { recursive: true, force: true });
    let left = 0;
    let closed = false;
    const close = () => {
      if (!closed) closeSync(fd);
      closed = true;
    };
    try {
      const splitter = new ExportSplitter(vmUuids);
      for await (const chunk of body) {
        writeSync(fd, chunk);
        splitter.push(chunk);
      }
      const builders = splitter.finish((offset, length) => {
        const b = Buffer.allocUnsafe(length);
        if (readSync(fd, b, 0, length, offset) !== length)
          throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the spooled export is short');
        return b;
      });
      left = builders.size;
      if (left === 0) close();
      // The file is closed once the last VM's export was built.
      return new Map(
        [...builders].map(([uuid, build]) => [
          uuid,
          () => {
            try {
              return build();
            } finally {
              if (--left === 0) close();
            }
          },
        ]),
      );
    } catch (e) {
      close();
      throw e;
    }
  }

  async importMetadata(body: Uint8Array, opts: { force: boolean; dryRun: boolean }) {
    await this.xapi.importMetadata(body, opts);
  }

  /** The pool's networks by name and bridge (xapi's import matches them so: import.ml). */
  async networks() {
    return [...(await this.xapi.getAllRecords<R>('network')).values()].map((n) => ({
      name: String(n.name_label ?? ''),
      bridge: String(n.bridge ?? ''),
    }));
  }

  exportNetworks(body: Uint8Array) {
    return ovaNetworks(readOva(body));
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
    const src = await openDevice(a.devicePath, true);
    try {
      size = src.size;
      const b = await pool.attach(to, { readOnly: false });
      try {
        const dst = await openDevice(b.devicePath, false);
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
    const back = await openDevice(c.devicePath, true);
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

/**
 * The block device at an attachment's path: the remote device (export/import_raw_vdi) when
 * attach only named the VDI, else the plugged device or an image file; closed on a signal.
 */
export async function openDevice(path: string, readOnly: boolean): Promise<BlockDevice> {
  return closeOnSignal(
    (await openRemote(path, readOnly)) ?? (await openFileDevice(path, { readOnly })),
  );
}

export const disk: DiskPort = {
  async open(path, opts) {
    const dev = await openDevice(path, opts.readOnly);
    try {
      return await Ring.open(dev, {
        readOnly: opts.readOnly,
        // Remote reads stream the disk from its start: a reader trusts the root (list reads
        // only the roots); a writer still recovers records committed beyond it.
        rootsOnly: isRemotePath(path) && opts.readOnly,
        expect: opts.expect,
        // verify decodes every part within the limits restore applies, keeping none.
        check: (bytes) => verifyRecord(bytes, archive, scanArchive),
        ...ringKeys(),
      });
    } catch (e) {
      await dev.close();
      throw e;
    }
  },
  async format(path, id) {
    const dev = await openDevice(path, false);
    try {
      // intent 'reinitialise' only from a confirmed -i or a VDI just created (core's openOrFormat).
      return await Ring.format(dev, { ...id, ...ringKeys() });
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

/**
 * How the backup waits between the retries of a refused export. A test replaces `sleep` so
 * that it needs no real time.
 */
export const retryTiming = {
  sleep: (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** The warning line of a run whose history could not be written (see adapters/event-log.ts). */
export function historyLostLine(what: string, e: unknown): string {
  const why = withCode(
    errorCode(e) ?? 'error',
    (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '',
  );
  return `warning: the history of this ${what} could not be written (${why}): 'xsmeta history' will not show it; the ${what} itself is reported as it happened`;
}
