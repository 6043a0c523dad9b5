import { expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import {
  type ArchivePort,
  type DiskPort,
  MemoryEventStore,
  type PoolPort,
  runBackup,
} from '../src/index.js';
import { stubPool } from './stub-pool.js';

/**
 * The exports still on their way when vm-1's fails: each ends (with data) only once the failure
 * has been handed out, and `settled` counts those that have.
 */
const inFlight = { started: 0, settled: 0, release: [] as (() => void)[] };

/** A pool whose second export fails at once while the first is still on its way. */
function pool(): PoolPort {
  const vms = Array.from({ length: 6 }, (_, i) => ({
    uuid: `vm-${i}`,
    name: `vm ${i}`,
    isTemplate: false,
    srUuids: ['sr'],
  }));
  return stubPool({
    attach: async () => {
      throw new Error('must not attach after a failed capture');
    },
    dumpDatabase: async () => new Uint8Array(10),
    vms: async () => vms,
    exportMetadata: (uuid) => {
      if (uuid === 'vm-1') {
        // The others finish after the failure has been seen, whenever the run looks again.
        setImmediate(() => {
          for (const r of inFlight.release.splice(0)) r();
        });
        return Promise.reject(Object.assign(new Error('injected'), { code: 'INTERNAL_ERROR' }));
      }
      inFlight.started++;
      return new Promise<Uint8Array>((r) =>
        inFlight.release.push(() => {
          r(new Uint8Array(100));
          inFlight.settled++;
        }),
      );
    },
  });
}

const archive: ArchivePort = {
  async write(parts) {
    let n = 0;
    for await (const p of parts) n += p.data instanceof Uint8Array ? p.data.length : 0;
    return { bytes: new Uint8Array(n), rawBytes: n, storedBytes: n, parts: [] };
  },
  read: () => {
    throw new Error('unused');
  },
};
const disk = {} as DiskPort;

it('an export failing while others are in flight fails the run once, with no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const on = (e: unknown) => unhandled.push(e);
  process.on('unhandledRejection', on);
  try {
    const events = new MemoryEventStore();
    await expect(
      runBackup({ pool: pool(), disk, archive, clock: { now: () => new Date(0) }, events }),
    ).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    // Every export still in flight ends, then a turn of the event loop for Node to report any
    // rejection nobody handled.
    await until(() => inFlight.settled >= inFlight.started, 'the exports in flight to end');
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(inFlight.started).toBeGreaterThan(0);
    expect(unhandled).toEqual([]);
    const types: string[] = [];
    for await (const e of events.readAll()) types.push(e.type);
    expect(types).toEqual(['BackupStarted', 'BackupFailed']);
  } finally {
    process.off('unhandledRejection', on);
  }
});

it('each event is in the log before the step it records goes further', async () => {
  const events = new MemoryEventStore();
  const logged = async () => {
    const types: string[] = [];
    for await (const e of events.readAll()) types.push(e.type);
    return types;
  };
  const seen: Record<string, string[]> = {};
  const ring = {
    list: () => [],
    append: async () => ({ seq: 1, createdAt: 0, size: 1, label: new Uint8Array() }),
    readAll: async () => new Uint8Array(),
    verify: async () => ({ ok: true, records: [] }),
    usage: () => ({ capacity: 1e9, used: 0, free: 1e9, maxRecords: 25, records: [] }),
    close: async () => {
      seen.ringClose = await logged();
    },
  };
  const p: PoolPort = {
    ...pool(),
    vms: async () => {
      seen.capture = await logged();
      return [];
    },
    attach: async () => {
      seen.attach = await logged();
      return {
        devicePath: '/dev/x',
        detach: async () => {
          seen.detach = await logged();
        },
      };
    },
  };
  const opened = async () => {
    seen.open = await logged();
    return ring;
  };
  const diskOk: DiskPort = { open: opened, format: opened };
  await runBackup({ pool: p, disk: diskOk, archive, clock: { now: () => new Date(0) }, events });
  // Started before the pool is read or the disk touched; the capture recorded before the
  // ring is opened to take it (the disk itself may be attached while the capture ends);
  // written once the ring committed, before the ring is closed and the disk let go.
  expect(seen.capture).toEqual(['BackupStarted']);
  expect(seen.attach).toEqual(['BackupStarted']);
  expect(seen.open).toEqual(['BackupStarted', 'BackupPartsCaptured']);
  expect(seen.ringClose).toEqual(['BackupStarted', 'BackupPartsCaptured', 'BackupWritten']);
  expect(seen.detach).toEqual(['BackupStarted', 'BackupPartsCaptured', 'BackupWritten']);
});
