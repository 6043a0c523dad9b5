/**
 * A VM that xapi refuses to export (a conflicting operation holds it: `lock_vm` in
 * ocaml/xapi/export.ml) does not sink the backup: it is retried, then left out, and the
 * record, the events, the listing and a restore all say so.
 */
import { describe, expect, it } from 'vitest';
import { splitRecord } from '../src/app/record-frame.js';
import {
  type ArchivePort,
  type BackupDeps,
  type BackupOptions,
  BUSY_VM_CODES,
  type DiskPort,
  listings,
  MemoryEventStore,
  type RingPort,
  type RingRecord,
  runBackup,
  runRestore,
} from '../src/index.js';
import { stubPool } from './stub-pool.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An archive that keeps its parts (JSON), with a digest the reader can check. */
const archive: ArchivePort = {
  async write(parts) {
    const out: { name: string; data: string }[] = [];
    for await (const p of parts) {
      const chunks: Uint8Array[] = [];
      if (p.data instanceof Uint8Array) chunks.push(p.data);
      else for await (const c of p.data) chunks.push(c);
      out.push({ name: p.name, data: Buffer.concat(chunks).toString('base64') });
    }
    const bytes = enc.encode(JSON.stringify(out));
    return {
      bytes,
      rawBytes: bytes.length,
      storedBytes: bytes.length,
      parts: out.map((p) => ({
        name: p.name,
        rawBytes: p.data.length,
        sha256: `len${p.data.length}`,
      })),
    };
  },
  async *read(bytes) {
    for (const p of JSON.parse(dec.decode(bytes)) as { name: string; data: string }[])
      yield {
        name: p.name,
        data: new Uint8Array(Buffer.from(p.data, 'base64')),
        sha256: `len${p.data.length}`,
      };
  },
};

function memoryRing(): RingPort {
  const records: (RingRecord & { data: Uint8Array })[] = [];
  return {
    list: () => records.map(({ data: _, ...r }) => r),
    async append(input) {
      const r = {
        seq: records.length + 1,
        createdAt: input.createdAt ?? 0,
        size: input.data.length,
        label: input.label,
        data: input.data,
      };
      records.push(r);
      return r;
    },
    async readAll(seq) {
      return records.find((r) => r.seq === seq)!.data;
    },
    async verify() {
      return { ok: true, records: records.map((r) => ({ seq: r.seq, ok: true })) };
    },
    usage: () => ({ capacity: 1e9, used: 0, free: 1e9, maxRecords: 25, records: [] }),
    close: async () => {},
  };
}

/** A ring in memory, and a disk that opens (or formats) to it. */
function ringDisk() {
  const ring = memoryRing();
  const disk: DiskPort = { open: async () => ring, format: async () => ring };
  return { ring, disk };
}

/** A backup of `p` to `disk` at time 0, recording no events and not waiting between retries. */
const backUp = (p: BackupDeps['pool'], disk: DiskPort, opts?: BackupOptions) =>
  runBackup(
    {
      pool: p,
      disk,
      archive,
      clock: { now: () => new Date(0) },
      events: null,
      sleep: async () => {},
    },
    opts,
  );

const busy = (code: string) => Object.assign(new Error(`${code}: VM busy`), { code, params: [] });

function pool(exportOf: (uuid: string, attempt: number) => Promise<Uint8Array>) {
  const vms = ['a', 'b', 'c'].map((n) => ({
    uuid: `vm-${n}`,
    name: `vm ${n}`,
    isTemplate: false,
    srUuids: ['sr'],
  }));
  const attempts = new Map<string, number>();
  const imported: string[] = [];
  const p = stubPool({
    attach: async () => ({ devicePath: '/dev/fake', detach: async () => {} }),
    dumpDatabase: async () => enc.encode('<database/>'),
    vms: async () => vms,
    exportMetadata: (uuid) => {
      const n = (attempts.get(uuid) ?? 0) + 1;
      attempts.set(uuid, n);
      return exportOf(uuid, n);
    },
    importMetadata: async (body) => {
      imported.push(dec.decode(body));
    },
  });
  return { pool: p, attempts, imported };
}

describe('a busy VM during a backup', () => {
  it('is retried with back-off, then left out: a partial record that says which and why', async () => {
    const { ring, disk } = ringDisk();
    const { pool: p, attempts } = pool((uuid) =>
      uuid === 'vm-b'
        ? Promise.reject(busy('OTHER_OPERATION_IN_PROGRESS'))
        : Promise.resolve(enc.encode(`export of ${uuid}`)),
    );
    const slept: number[] = [];
    const events = new MemoryEventStore();
    const r = await runBackup(
      {
        pool: p,
        disk,
        archive,
        clock: { now: () => new Date(0) },
        events,
        sleep: async (ms) => void slept.push(ms),
      },
      {},
    );
    // Asked 4 times (3 retries), waiting longer each time; the others once.
    expect(attempts.get('vm-b')).toBe(4);
    expect(attempts.get('vm-a')).toBe(1);
    expect(slept).toHaveLength(3);
    expect([...slept].sort((x, y) => x - y)).toEqual(slept);
    expect(r.vmCount).toBe(2);
    expect(r.skipped).toEqual([
      expect.objectContaining({ uuid: 'vm-b', name: 'vm b', code: 'OTHER_OPERATION_IN_PROGRESS' }),
    ]);
    const types: { type: string; data: unknown }[] = [];
    for await (const e of events.readAll()) types.push({ type: e.type, data: e.data });
    // Each retry and the leaving out are the decider's, appended as decided.
    expect(types.map((e) => e.type)).toEqual([
      'BackupStarted',
      'BackupExportRetried',
      'BackupExportRetried',
      'BackupExportRetried',
      'BackupVmSkipped',
      'BackupPartsCaptured',
      'BackupWritten',
    ]);
    expect(types.slice(1, 4).map((e) => e.data)).toEqual(
      [2_000, 5_000, 10_000].map((delayMs, i) => ({
        runId: expect.any(String),
        vmUuid: 'vm-b',
        code: 'OTHER_OPERATION_IN_PROGRESS',
        attempt: i + 1,
        delayMs,
      })),
    );
    expect(slept).toEqual([2_000, 5_000, 10_000]);
    expect(types[4]!.data).toMatchObject({
      vmUuid: 'vm-b',
      code: 'OTHER_OPERATION_IN_PROGRESS',
      attempts: 4,
    });
    expect(types[5]!.data).toMatchObject({ vmCount: 2, skippedVms: 1 });
    expect(types[6]!.data).toMatchObject({ vmCount: 2, skippedVms: 1 });
    // The listing (the ring's index alone) shows it partial.
    expect(listings(ring)[0]).toMatchObject({ vmCount: 2, skippedVms: 1 });
    // A restore of it says which VM it does not hold, and restores the others.
    const restored = await runRestore(
      { pool: p, disk, archive, clock: { now: () => new Date(1000) }, events: null },
      { mode: 'all', dryRun: true, force: false },
    );
    expect(restored.vms.map((v) => v.uuid)).toEqual(['vm-a', 'vm-c']);
    expect(restored.missing).toEqual([
      expect.objectContaining({ uuid: 'vm-b', code: 'OTHER_OPERATION_IN_PROGRESS' }),
    ]);
  });

  it('a VM free again before the retries run out is in the backup; a full backup has no skipped mark', async () => {
    const { ring, disk } = ringDisk();
    const { pool: p } = pool((uuid, n) =>
      uuid === 'vm-a' && n < 3
        ? Promise.reject(busy('VM_BAD_POWER_STATE'))
        : Promise.resolve(enc.encode(uuid)),
    );
    const r = await backUp(p, disk);
    expect(r.skipped).toEqual([]);
    expect(r.vmCount).toBe(3);
    expect(listings(ring)[0]).not.toHaveProperty('skippedVms');
  });

  it('any other export error still fails the backup, without retries', async () => {
    const { ring, disk } = ringDisk();
    const { pool: p, attempts } = pool((uuid) =>
      uuid === 'vm-c' ? Promise.reject(busy('INTERNAL_ERROR')) : Promise.resolve(enc.encode(uuid)),
    );
    await expect(backUp(p, disk)).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    expect(attempts.get('vm-c')).toBe(1);
    expect(BUSY_VM_CODES.has('OTHER_OPERATION_IN_PROGRESS')).toBe(true);
    expect(ring.list()).toEqual([]);
  });
});

describe('the one-request export of every VM (export_metadata?all=true)', () => {
  it('is used when the pool has it: no per-VM export; one it lacks is exported alone', async () => {
    const { disk } = ringDisk();
    const { pool: p, attempts } = pool((uuid) => Promise.resolve(enc.encode(`alone ${uuid}`)));
    const asked: string[][] = [];
    p.exportAll = async (uuids) => {
      asked.push([...(uuids ?? [])]);
      return new Map([
        ['vm-a', () => enc.encode('split vm-a')],
        ['vm-b', () => enc.encode('split vm-b')],
      ]);
    };
    const r = await backUp(p, disk);
    expect(asked).toEqual([['vm-a', 'vm-b', 'vm-c']]);
    expect([...attempts.keys()]).toEqual(['vm-c']);
    expect(r.vmCount).toBe(3);
    const restored = await runRestore(
      { pool: p, disk, archive, clock: { now: () => new Date(1) }, events: null },
      { mode: 'all', dryRun: true, force: false },
    );
    expect(restored.vms.every((v) => v.ok)).toBe(true);
  });

  it('is closed when the backup fails midway, its exports only partly built', async () => {
    const ring = memoryRing();
    const disk: DiskPort = { open: async () => ring, format: async () => ring };
    const { pool: p } = pool((uuid) => Promise.resolve(enc.encode(uuid)));
    let closed = 0;
    p.exportAll = async () =>
      Object.assign(
        new Map([
          ['vm-a', () => enc.encode('split vm-a')],
          ['vm-b', () => enc.encode('split vm-b')],
          ['vm-c', () => enc.encode('split vm-c')],
        ]),
        { close: () => void closed++ },
      );
    // The archive gives up at the first VM's part: the others are never built.
    const failing: ArchivePort = {
      ...archive,
      async write(parts) {
        for await (const part of parts)
          if (part.name.includes('vm-a')) throw new Error('disk full');
        throw new Error('not reached');
      },
    };
    await expect(
      runBackup({
        pool: p,
        disk,
        archive: failing,
        clock: { now: () => new Date(0) },
        events: null,
      }),
    ).rejects.toThrow('disk full');
    expect(closed).toBe(1);
  });

  it('is closed when the backup stops before taking it (the listings failed)', async () => {
    const ring = memoryRing();
    const disk: DiskPort = { open: async () => ring, format: async () => ring };
    const { pool: p } = pool((uuid) => Promise.resolve(enc.encode(uuid)));
    // Asked before the listings (the count allows it); the listings then fail.
    p.vmCount = async () => 3;
    p.vms = () => Promise.reject(new Error('listing failed'));
    // Given only once the backup has failed, so it is never taken; closed all the same.
    let give!: () => void;
    const given = new Promise<void>((r) => {
      give = r;
    });
    let closedNow!: () => void;
    const closed = new Promise<void>((r) => {
      closedNow = r;
    });
    p.exportAll = async () => {
      await given;
      return Object.assign(new Map([['vm-a', () => enc.encode('split vm-a')]]), {
        close: closedNow,
      });
    };
    await expect(
      runBackup({ pool: p, disk, archive, clock: { now: () => new Date(0) }, events: null }),
    ).rejects.toThrow('listing failed');
    give();
    await closed;
  });

  it('is not used above exportAllMaxVms (it is held in memory whole)', async () => {
    const { disk } = ringDisk();
    const { pool: p, attempts } = pool((uuid) => Promise.resolve(enc.encode(uuid)));
    let asked = 0;
    p.exportAll = async () => {
      asked++;
      return new Map();
    };
    await backUp(p, disk, { exportAllMaxVms: 2 });
    expect(asked).toBe(0);
    expect(attempts.size).toBe(3);
  });

  it('refused (a busy VM: xapi locks them all) falls back to per-VM exports, which leave the busy one out', async () => {
    const { disk } = ringDisk();
    const { pool: p, attempts } = pool((uuid) =>
      uuid === 'vm-c'
        ? Promise.reject(busy('OTHER_OPERATION_IN_PROGRESS'))
        : Promise.resolve(enc.encode(uuid)),
    );
    p.exportAll = () => Promise.reject(busy('OTHER_OPERATION_IN_PROGRESS'));
    const r = await backUp(p, disk);
    expect(attempts.get('vm-a')).toBe(1);
    expect(r.skipped.map((v) => v.uuid)).toEqual(['vm-c']);
    expect(r.vmCount).toBe(2);
  });
});

describe('the pool database in a backup', () => {
  it('given as chunks, goes into the record as chunks (never joined whole first), counted in the progress', async () => {
    const { ring, disk } = ringDisk();
    const { pool: p } = pool((uuid) => Promise.resolve(enc.encode(uuid)));
    const given: string[] = [];
    p.dumpDatabase = async () =>
      (async function* () {
        for (const c of ['<database>', '<table/>', '</database>']) {
          given.push(c);
          yield enc.encode(c);
        }
      })();
    const seen: { part: string; streamed: boolean }[] = [];
    const spy: ArchivePort = {
      write: (parts, opts) =>
        archive.write(
          (async function* () {
            for await (const part of parts) {
              seen.push({ part: part.name, streamed: !(part.data instanceof Uint8Array) });
              yield part;
            }
          })(),
          opts,
        ),
      read: archive.read,
    };
    // The running byte count: the dump's tick adds exactly its bytes, once they all went.
    const bytes: number[] = [];
    let before = 0;
    await runBackup({
      pool: p,
      disk,
      archive: spy,
      clock: { now: () => new Date(0) },
      events: null,
      progress: (e) => {
        if (e.item === 'pool database') bytes.push(e.bytes - before);
        else before = e.bytes;
      },
    });
    // After the VMs' parts (asked once the pool sent them), before the SR metadata.
    expect(seen.map((x) => x.part)).toEqual([
      'vms/vm-a.ova.tar',
      'vms/vm-b.ova.tar',
      'vms/vm-c.ova.tar',
      'pool-db.xml',
      'srmeta.xml',
      'vm-map.json',
      'manifest.json',
    ]);
    expect(seen[3]).toEqual({ part: 'pool-db.xml', streamed: true });
    expect(given).toHaveLength(3);
    expect(bytes).toEqual(['<database><table/></database>'.length]);
    const [rec] = ring.list();
    const parts = JSON.parse(dec.decode(splitRecord(await ring.readAll(rec!.seq)).parts)) as {
      name: string;
      data: string;
    }[];
    const db = parts.find((x) => x.name === 'pool-db.xml')!;
    expect(Buffer.from(db.data, 'base64').toString()).toBe('<database><table/></database>');
  });
});
