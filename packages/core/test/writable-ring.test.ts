import { describe, expect, it } from 'vitest';
import {
  type DiskPort,
  errorCode,
  type RingPort,
  type VdiInfo,
  withWritableRing,
} from '../src/index.js';
import { STUB_BACKUP_VDI, stubPool } from './stub-pool.js';

/** A pool holding `vdi` (or nothing), a disk whose device holds `holds`; what each did. */
function world(vdi: VdiInfo | null, holds: 'ring' | 'blank') {
  const log: string[] = [];
  const ring = {
    list: () => [],
    close: async () => {
      log.push('close');
    },
  } as unknown as RingPort;
  const pool = stubPool({
    findVdi: async () => vdi,
    createBackupVdi: async (sr, size) => {
      log.push(`create ${sr} ${size}`);
      return { ...STUB_BACKUP_VDI, srUuid: sr };
    },
    attach: async (uuid, o) => {
      log.push(`attach ${uuid} ${o.readOnly ? 'ro' : 'rw'}`);
      return { devicePath: '/dev/x', detach: async () => void log.push('detach') };
    },
  });
  const disk: DiskPort = {
    open: async () => {
      log.push('open');
      if (holds === 'blank')
        throw Object.assign(new Error('blank'), { code: 'RING_NOT_FORMATTED' });
      return ring;
    },
    format: async (_p, id) => {
      log.push(`format ${id.intent ?? 'blank-only'}`);
      return ring;
    },
  };
  return { pool, disk, log };
}

describe('withWritableRing: the backup VDI found, or made when asked, then opened for writing', () => {
  it('opens the existing ring, runs fn, closes and detaches', async () => {
    const w = world(STUB_BACKUP_VDI, 'ring');
    const r = await withWritableRing(w, { srUuid: 'sr', create: false }, async () => {
      w.log.push('fn');
      return 7;
    });
    expect(r).toBe(7);
    expect(w.log).toEqual(['attach vdi rw', 'open', 'fn', 'close', 'detach']);
  });

  it('creates and formats the VDI when missing and asked; refuses with -c / --create when not', async () => {
    const w = world(null, 'blank');
    await withWritableRing(w, { srUuid: 'sr', create: true, vdiSize: 1024 }, async () => {});
    expect(w.log).toEqual([
      'create sr 1024',
      'attach vdi rw',
      'format reinitialise',
      'close',
      'detach',
    ]);
    const none = world(null, 'blank');
    const e = await withWritableRing(none, { srUuid: 'sr', create: false }, async () => {}).catch(
      (x: unknown) => x as Error,
    );
    expect(errorCode(e)).toBe('BACKUP_VDI_MISSING');
    expect((e as Error).message).toMatch(/-c .*--create/);
    expect(none.log).toEqual([]);
  });

  it('formats a blank existing VDI (never one that holds records)', async () => {
    const w = world(STUB_BACKUP_VDI, 'blank');
    await withWritableRing(w, { srUuid: 'sr', create: false }, async () => {});
    expect(w.log).toEqual(['attach vdi rw', 'open', 'format blank-only', 'close', 'detach']);
  });

  it('refuses a VDI of that uuid on another SR (UNTRUSTED_VDI), touching nothing', async () => {
    const w = world({ ...STUB_BACKUP_VDI, srUuid: 'elsewhere' }, 'ring');
    const e = await withWritableRing(w, { srUuid: 'sr', create: true }, async () => {}).catch(
      (x: unknown) => x,
    );
    expect(errorCode(e)).toBe('UNTRUSTED_VDI');
    expect(w.log).toEqual([]);
  });

  it('detaches when fn fails', async () => {
    const w = world(STUB_BACKUP_VDI, 'ring');
    await expect(
      withWritableRing(w, { srUuid: 'sr', create: false }, async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(w.log.slice(-2)).toEqual(['close', 'detach']);
  });
});
