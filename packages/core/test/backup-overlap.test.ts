/**
 * The backup overlaps its requests with the pool's work: the export of every VM is asked
 * before the listings are read (when the pool's VM count allows it) and before the pool
 * database, which is asked once the export arrived; the disk is attached while the parts are
 * built; the VMs and SRs come from one inventory when the pool port has one. What the record
 * holds does not change.
 */
import { expect, it } from 'vitest';
import type {
  ArchivePort,
  BackupDeps,
  BackupOptions,
  DiskPort,
  PoolPort,
  RingPort,
  SrInfo,
  VmInfo,
} from '../src/index.js';
import { MemoryEventStore, runBackup } from '../src/index.js';
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
/** An all=true export that holds every VM of `vms`. */
const splitAll = async () => new Map(vms.map((v) => [v.uuid, () => enc.encode(`split ${v.uuid}`)]));

/** A backup on a ring that takes every record, the capture kept by `archive`. */
const backUp = (
  pool: PoolPort,
  archive: ArchivePort,
  deps: Partial<BackupDeps> = {},
  opts: BackupOptions = {},
) =>
  runBackup(
    { pool, disk: ringDisk(), archive, clock: { now: () => new Date(0) }, events: null, ...deps },
    opts,
  );
/** An attach that records 'attach' and, when the attachment is let go, 'detach' in `calls`. */
const attachRecorded = (calls: string[]) => async () => {
  calls.push('attach');
  return { devicePath: '/dev/x', detach: async () => void calls.push('detach') };
};

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
  const r = await backUp(pool, archive);
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
    await backUp(pool, archive);
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
  const r = await backUp(pool, archive);
  expect(r.vmCount).toBe(1);
  expect(r.templateCount).toBe(1);
  const map = [...parts.entries()].find(([n]) => n.includes('map'));
  expect(JSON.parse(map![1]).map((v: VmInfo) => v.uuid)).toEqual(['vm-a', 'vm-b']);
  const srmeta = [...parts.entries()].find(([n]) => n.toLowerCase().includes('srmeta'));
  expect(srmeta![1]).toContain('sr');
});

/** A pool whose listing answers only when `release` is called, recording the calls' order. */
function slowListing(count: number) {
  const calls: string[] = [];
  let release: () => void = () => {};
  const listed = new Promise<void>((r) => {
    release = r;
  });
  const pool: PoolPort = stubPool({
    attach,
    inventory: async () => {
      calls.push('inventory');
      await listed;
      calls.push('listed');
      return { vms, srs };
    },
    vmCount: async () => count,
    exportAll: async (uuids) => {
      calls.push(`exportAll ${uuids ? uuids.join(',') : '(every VM)'}`);
      release();
      return new Map(vms.map((v) => [v.uuid, () => enc.encode(`split ${v.uuid}`)]));
    },
  });
  return { pool, calls, release: () => release() };
}

it('asks for the export of every VM before the listings answer when the VM count allows it', async () => {
  const { pool, calls } = slowListing(5);
  const { archive, parts } = keepingArchive();
  const r = await backUp(pool, archive, {}, { exportAllMaxVms: 5 });
  // Asked before the listings are (so its request reaches the pool while they are built); the
  // listing answers only once the export was asked: asked after it, the backup would hang.
  expect(calls).toEqual(['exportAll (every VM)', 'inventory', 'listed']);
  expect(r.vmCount).toBe(1);
  expect([...parts.values()]).toContain('split vm-b');
});

it('decides on the listings when the VM count is above what the one-request export takes', async () => {
  const { pool, calls, release } = slowListing(6);
  const { archive } = keepingArchive();
  const run = backUp(pool, archive, {}, { exportAllMaxVms: 5 });
  await new Promise((r) => setImmediate(r));
  expect(calls).toEqual(['inventory']);
  release();
  await run;
  expect(calls).toEqual(['inventory', 'listed', 'exportAll vm-a,vm-b']);
});

it('frees an export asked early when the listings then fail', async () => {
  let closed = 0;
  const pool: PoolPort = stubPool({
    attach,
    inventory: async () => {
      await new Promise((r) => setImmediate(r));
      throw Object.assign(new Error('listing refused'), { code: 'SESSION_INVALID' });
    },
    vmCount: async () => 3,
    exportAll: async () =>
      Object.assign(new Map<string, () => Uint8Array>(), {
        close: () => {
          closed++;
        },
      }),
  });
  const { archive } = keepingArchive();
  await expect(backUp(pool, archive)).rejects.toThrow('listing refused');
  await new Promise((r) => setImmediate(r));
  expect(closed).toBe(1);
});

it('attaches the backup disk once the export of every VM arrived, before the VMs are built', async () => {
  const calls: string[] = [];
  const pool: PoolPort = stubPool({
    vms: async () => vms,
    attach: attachRecorded(calls),
    exportAll: async () =>
      new Map(
        vms.map((v) => [
          v.uuid,
          () => {
            calls.push(`build ${v.uuid}`);
            return enc.encode(`split ${v.uuid}`);
          },
        ]),
      ),
  });
  const { archive } = keepingArchive();
  await backUp(pool, archive);
  expect(calls).toEqual(['attach', 'build vm-a', 'build vm-b', 'detach']);
});

it('detaches a disk attached during the capture when the capture then fails', async () => {
  const calls: string[] = [];
  const pool: PoolPort = stubPool({
    vms: async () => vms,
    attach: attachRecorded(calls),
    exportAll: async () =>
      new Map([
        ['vm-a', () => enc.encode('split vm-a')],
        [
          'vm-b',
          () => {
            throw Object.assign(new Error('spool gone'), { code: 'XAPI_PROTOCOL' });
          },
        ],
      ]),
  });
  const { archive } = keepingArchive();
  const disk = ringDisk();
  let opened = 0;
  await expect(
    runBackup({
      pool,
      disk: {
        ...disk,
        open: (...a) => {
          opened++;
          return disk.open(...a);
        },
      },
      archive,
      clock: { now: () => new Date(0) },
      events: null,
    }),
  ).rejects.toThrow('spool gone');
  expect(calls).toEqual(['attach', 'detach']);
  expect(opened).toBe(0);
});

it('asks for the pool database only once the export of every VM arrived', async () => {
  const calls: string[] = [];
  let arrive: () => void = () => {};
  const arrived = new Promise<void>((r) => {
    arrive = r;
  });
  const pool: PoolPort = stubPool({
    attach,
    vms: async () => vms,
    dumpDatabase: async () => {
      calls.push('dumpDatabase');
      return enc.encode('db');
    },
    exportAll: async () => {
      calls.push('exportAll');
      await arrived;
      calls.push('arrived');
      return new Map(vms.map((v) => [v.uuid, () => enc.encode(`split ${v.uuid}`)]));
    },
  });
  const { archive, parts } = keepingArchive();
  const run = backUp(pool, archive);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  expect(calls).toEqual(['exportAll']);
  arrive();
  await run;
  expect(calls).toEqual(['exportAll', 'arrived', 'dumpDatabase']);
  expect([...parts.keys()].indexOf('pool-db.xml')).toBeGreaterThan(
    [...parts.keys()].findIndex((n) => n.startsWith('vms/')),
  );
});

it('a run stopped once its capture is recorded detaches the disk attached meanwhile, writes nothing', async () => {
  const calls: string[] = [];
  const stop = new AbortController();
  /** Stops the run (Ctrl-C) as soon as the capture is in the log. */
  class StopAfterCapture extends MemoryEventStore {
    override async appendToStream(...a: Parameters<MemoryEventStore['appendToStream']>) {
      const r = await super.appendToStream(...a);
      if (a[1].some((e) => e.type === 'BackupPartsCaptured')) stop.abort();
      return r;
    }
  }
  const pool: PoolPort = stubPool({
    vms: async () => vms,
    attach: attachRecorded(calls),
    exportAll: splitAll,
  });
  const { archive } = keepingArchive();
  const disk = ringDisk();
  await expect(
    runBackup({
      pool,
      disk: {
        ...disk,
        open: (...a) => {
          calls.push('open');
          return disk.open(...a);
        },
      },
      archive,
      clock: { now: () => new Date(0) },
      events: new StopAfterCapture(),
      signal: stop.signal,
    }),
  ).rejects.toThrow();
  expect(calls).toEqual(['attach', 'detach']);
});

it('tells when it takes the one-request export, and only then', async () => {
  const told: string[] = [];
  const tell = { onOneRequestExport: () => void told.push('one request') };
  const alone = async (uuid: string) => enc.encode(`alone ${uuid}`);
  const fast = stubPool({
    attach,
    vms: async () => vms,
    exportAll: splitAll,
    exportMetadata: alone,
  });
  await backUp(fast, keepingArchive().archive, tell);
  expect(told).toEqual(['one request']);
  // Above the limit, VM by VM: not told.
  await backUp(fast, keepingArchive().archive, tell, { exportAllMaxVms: 1 });
  // A pool without the one-request export: not told either.
  const slow = stubPool({ attach, vms: async () => vms, exportMetadata: alone });
  await backUp(slow, keepingArchive().archive, tell);
  expect(told).toEqual(['one request']);
});
