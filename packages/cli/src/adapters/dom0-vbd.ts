import { join } from 'node:path';
import type { Attachment } from '@xsmeta/core';
import { type VbdRecord, type XapiClient, XapiError } from '@xsmeta/xapi';
import { ConfigError, readInventory, type Settings } from '../config.js';
import { myOwner, ownerGone, parseOwner } from '../process/owner.js';
import { interrupted, onCleanup } from '../process/signals.js';

/**
 * For a read of an object another process may remove: HANDLE_INVALID (xapi's answer for a
 * reference whose object was destroyed: ocaml/xapi/exnHelper.ml maps the database's "missing
 * reference" to it) means it is gone, null; any other error stands.
 */
export function unlessGone(e: unknown): null {
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

/**
 * The VBDs xsmeta plugs into the control domain (dom0) to read or write a VDI's bytes through
 * a block device: created, plugged, and on every path (a signal too) unplugged and destroyed;
 * those a killed run left are swept before a new one is plugged.
 */
export class ControlDomainVbds {
  constructor(
    private readonly xapi: XapiClient,
    private readonly settings: Settings,
  ) {}

  /** VBD on the control domain, plugged; detach() unplugs and destroys it, on every path. */
  async attach(vdi: string, vdiUuid: string, opts: { readOnly: boolean }): Promise<Attachment> {
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
    if (interrupted()) throw new Error('interrupted: not attaching a disk');
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
      if (interrupted()) throw new Error('interrupted: not plugging the disk');
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
  async unplug(vbd: string): Promise<void> {
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
      const rec = await this.xapi.getRecord<VbdRecord>('VBD', vbd).catch(unlessGone);
      if (rec === null) continue;
      const oc = rec.other_config ?? {};
      if (oc['xsmeta-attach'] !== 'true' || rec.VM !== dom0) continue;
      const owner = oc['xsmeta-owner'];
      const stale = owner === undefined ? writer : ownerGone(parseOwner(owner));
      if (!stale) continue;
      if (rec.currently_attached) await this.unplug(vbd).catch(() => {});
      await this.xapi.call('VBD.destroy', vbd).catch(() => {});
    }
  }
}
