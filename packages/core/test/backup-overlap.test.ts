/**
 * The backup overlaps its requests with the pool's work: the export of every VM is asked
 * before the pool database is read, and the VMs and SRs come from one inventory when the
 * pool port has one. What the record holds does not change.
 */
import { expect, it } from 'vitest';
import type { ArchivePort, DiskPort, PoolPort, RingPort, SrInfo, VmInfo } from '../src/index.js';
import { runBackup } from '../src/index.js';
import { stubPool } from './stub-pool.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Keeps each part's bytes by name. */
function keepingArchive(): { archive: ArchivePort; parts: Map<string, string> } {
  const parts = new Map<string, string>();
  const archive: ArchivePort = {
    async write(input) {
      let n = 0;
      for await (const p of input) {
        const chunks: Uint8Array[] = [];
        if (p.data instanceof Uint8Array) chunks.push(p.data);
        else for await (const c of p.data) chunks.push(c);
        const text = dec.decode(Buffer.concat(chunks));
        parts.set(p.name, text);
        n += text.length;
      }
      return { bytes: new Uint8Array(n), rawBytes: n, storedBytes: n, parts: [] };
    },
    read: () => {
      throw new Error('unused');
    },
  };
  return { archive, parts };
}

function ringDisk(): DiskPort {
  const ring: RingPort = {
    list: () => [],
    append: async () => ({ seq: 1, createdAt: 0, size: 1, label: new Uint8Array() }),
    readAll: async () => new Uint8Array(),
    verify: async () => ({ ok: true, records: [] }),
    usage: () => ({ capacity: 1e9, used: 0, free: 1e9, maxRecords: 25, records: [] }),
    close: async () => {},
  };
  return { open: async () => ring, format: async () => ring };
}

const vms: VmInfo[] = [
  { uuid: 'vm-a', name: 'a', isTemplate: false, srUuids: ['sr'] },
  { uuid: 'vm-b', name: 'b', isTemplate: true, srUuids: [] },
];
const srs: SrInfo[] = [{ uuid: 'sr', name: 'SR', description: '', type: 'nfs', vdis: [] }];
const attach = async () => ({ devicePath: '/dev/x', detach: async () => {} });

it('asks for the export of every VM before it reads the pool database', async () => {
  const calls: string[] = [];
  const pool: PoolPort = stubPool({
    attach,
    vms: async () => vms,
    dumpDatabase: async () => {
      calls.push('dumpDatabase');
      return enc.encode('db');
    },
    exportAll: async () => {
      calls.push('exportAll');
      return new Map(vms.map((v) => [v.uuid, () => enc.encode(`split ${v.uuid}`)]));
    },
  });
  const { archive, parts } = keepingArchive();
  const r = await runBackup({
    pool,
    disk: ringDisk(),
    archive,
    clock: { now: () => new Date(0) },
    events: null,
  });
  expect(calls).toEqual(['exportAll', 'dumpDatabase']);
  expect(r.vmCount).toBe(1);
  expect(r.templateCount).toBe(1);
  expect([...parts.values()]).toContain('split vm-a');
});

it('an export of every VM that fails while the dump is read falls back to per-VM exports', async () => {
  const alone: string[] = [];
  const pool: PoolPort = stubPool({
    attach,
    vms: async () => vms,
    exportAll: () =>
      Promise.reject(Object.assign(new Error('busy'), { code: 'VM_BAD_POWER_STATE' })),
    exportMetadata: async (uuid) => {
      alone.push(uuid);
      return enc.encode(`alone ${uuid}`);
    },
  });
  const { archive } = keepingArchive();
  const unhandled: unknown[] = [];
  const on = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', on);
  try {
    await runBackup({
      pool,
      disk: ringDisk(),
      archive,
      clock: { now: () => new Date(0) },
      events: null,
    });
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('unhandledRejection', on);
  }
  expect(alone).toEqual(['vm-a', 'vm-b']);
  expect(unhandled).toEqual([]);
});

it('takes the VMs and SRs from one inventory when the pool port has one', async () => {
  const refuse = async (): Promise<never> => {
    throw new Error('asked separately');
  };
  const pool: PoolPort = stubPool({
    attach,
    vms: refuse,
    srs: refuse,
    inventory: async () => ({ vms, srs }),
    exportMetadata: async (uuid) => enc.encode(`alone ${uuid}`),
  });
  const { archive, parts } = keepingArchive();
  const r = await runBackup({
    pool,
    disk: ringDisk(),
    archive,
    clock: { now: () => new Date(0) },
    events: null,
  });
  expect(r.vmCount).toBe(1);
  expect(r.templateCount).toBe(1);
  const map = [...parts.entries()].find(([n]) => n.includes('map'));
  expect(JSON.parse(map![1]).map((v: VmInfo) => v.uuid)).toEqual(['vm-a', 'vm-b']);
  const srmeta = [...parts.entries()].find(([n]) => n.toLowerCase().includes('srmeta'));
  expect(srmeta![1]).toContain('sr');
});
