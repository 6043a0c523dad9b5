// Remote mode: xsmeta on a machine that is not a pool host (a URL is given and there is no
// xensource-inventory). A backup VDI is then never plugged anywhere: "attaching" it names it
// for the remote device (device.ts), which reads and writes it through XAPI's raw-VDI handlers.
import { existsSync } from 'node:fs';
import type { Attachment } from '@xsmeta/core';
import type { XapiClient } from '@xsmeta/xapi';
import { RemoteDevice } from './device.js';

/** Whether these settings name a remote pool: a URL, and no pool host's inventory here. */
export function isRemote(s: { url: string | null; inventory: string }): boolean {
  return s.url !== null && !existsSync(s.inventory);
}

interface Named {
  xapi: XapiClient;
  vdiRef: string;
  readOnly: boolean;
}

const named = new Map<string, Named>();
let counter = 0;

/** Names a VDI for the remote device; detach() forgets it and runs `release` (the lock). */
export function remoteAttachment(
  xapi: XapiClient,
  vdiRef: string,
  vdiUuid: string,
  readOnly: boolean,
  release: () => Promise<void>,
): Attachment {
  const devicePath = `xapi-vdi:${vdiUuid}#${++counter}`;
  named.set(devicePath, { xapi, vdiRef, readOnly });
  let detaching: Promise<void> | null = null;
  return {
    devicePath,
    detach: () => {
      detaching ??= (async () => {
        named.delete(devicePath);
        await release();
      })();
      return detaching;
    },
  };
}

/** Whether a path is one remoteAttachment gave (a VDI reached through xapi's handlers). */
export function isRemotePath(path: string): boolean {
  return named.has(path);
}

/** The remote device for a path remoteAttachment gave, or null for any other path. */
export async function openRemote(path: string, readOnly: boolean): Promise<RemoteDevice | null> {
  const n = named.get(path);
  if (!n) return null;
  return RemoteDevice.open(n.xapi, n.vdiRef, { readOnly: readOnly || n.readOnly });
}
