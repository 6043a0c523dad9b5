import { createHash } from 'node:crypto';
import type { DiskPort, PoolPort } from '@xsmeta/core';
import { verifyRecord } from '@xsmeta/core/catalogue';
import { type BlockDevice, openFileDevice, Ring, scanArchive } from '@xsmeta/vdi-store';
import { ringKeys } from '../keys.js';
import { closeOnSignal } from '../process/signals.js';
import { isRemotePath, openRemote } from '../remote/mode.js';
import { archive } from './archive.js';

/**
 * Copies a VDI's bytes onto another of at least its size and flushes; then plugs the copy
 * again, read-only, and compares its digest with the original's, read through that fresh
 * device rather than the one just written.
 */
export async function copyBytes(
  attach: PoolPort['attach'],
  from: string,
  to: string,
): Promise<void> {
  const chunk = 4 * 1024 * 1024;
  const a = await attach(from, { readOnly: true });
  let want: string;
  let size: number;
  try {
    const src = await openDevice(a.devicePath, true);
    try {
      size = src.size;
      const b = await attach(to, { readOnly: false });
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
  const c = await attach(to, { readOnly: true });
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
