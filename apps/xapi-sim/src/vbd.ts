// What VBD.create checks of its arguments (ocaml/xapi/xapi_vbd.ml `create`), apart from the
// pool's state: map arguments, the VDI types a VBD may point at, and the device slot.
import { Failure } from './errors.js';

/** An XAPI `(string -> string) map` argument: string values kept, anything else dropped. */
export function stringMap(v: unknown): Record<string, string> {
  if (!v || typeof v !== 'object') return {};
  return Object.fromEntries(
    Object.entries(v as Record<string, unknown>).filter(
      (e): e is [string, string] => typeof e[1] === 'string',
    ),
  );
}

/** VDI types a VBD may point at (xapi_vbd.ml `create`). */
export const VBD_VDI_TYPES = [
  'system',
  'user',
  'ephemeral',
  'suspend',
  'crashdump',
  'metadata',
  'rrd',
  'pvs_cache',
];

/**
 * The slot a userdevice names (Device_number in xapi): a number, or a Linux name
 * (`xvdb`, `hdb`, `sdb`) whose letter gives the slot. null when it names no device.
 */
function deviceNumber(d: string): number | null {
  if (/^[0-9]{1,3}$/.test(d)) return Number(d) < 255 ? Number(d) : null;
  const m = /^(xvd|hd|sd)([a-z])$/.exec(d);
  return m ? m[2]!.charCodeAt(0) - 97 : null;
}

/**
 * The userdevice a new VBD gets: the one asked for, or with `autodetect` the lowest free slot
 * (Xapi_vm_helpers.allowed_VBD_devices, 0..254 for HVM/PV disks). INVALID_DEVICE for a name
 * of no slot, DEVICE_ALREADY_EXISTS for a slot one of `used` (the VM's VBDs) holds.
 */
export function chooseUserdevice(asked: string, used: readonly string[]): string {
  let userdevice = asked;
  if (userdevice !== 'autodetect' && deviceNumber(userdevice) === null)
    throw new Failure('INVALID_DEVICE', [userdevice]);
  if (userdevice === 'autodetect') {
    const taken = new Set(used);
    let n = 0;
    while (n < 255 && taken.has(String(n))) n++;
    if (n === 255) throw new Failure('INVALID_DEVICE', [userdevice]);
    userdevice = String(n);
  }
  const n = deviceNumber(userdevice);
  if (used.some((u) => u !== '' && deviceNumber(u) === n))
    throw new Failure('DEVICE_ALREADY_EXISTS', [userdevice]);
  return userdevice;
}
