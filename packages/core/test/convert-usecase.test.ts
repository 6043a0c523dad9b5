import { expect, it } from 'vitest';
import {
  type ArchivePort,
  BACKUP_FORMAT_VERSION,
  type DiskPort,
  decodeLabel,
  encodeLabel,
  type LegacyReaderPort,
  listings,
  MemoryEventStore,
  type RingPort,
  type RingRecord,
  runConvert,
} from '../src/index.js';
import { STUB_BACKUP_VDI, stubPool } from './stub-pool.js';

/** A ring in memory with the real ring's eviction rule (keep the newest keep-1) and a byte cap. */
function memoryRing(capacity: number, maxRecords: number, dates: string[]) {
  const records: (RingRecord & { data: Uint8Array })[] = [];
  let next = 1;
  const ring: RingPort = {
    list: () => [...records].reverse(),
    async append({ label, data, keep = maxRecords }) {
      const kept = records.slice(Math.max(0, records.length - (keep - 1)));
      if (kept.reduce((n, r) => n + r.size, 0) + data.length > capacity)
        throw Object.assign(new Error('full'), { code: 'RING_FULL' });
      records.splice(0, records.length, ...kept);
      const r = { seq: next++, createdAt: 0, size: data.length, label, data };
      records.push(r);
      return r;
    },
    readAll: async () => new Uint8Array(),
    verify: async () => ({ ok: true, records: [] }),
    usage: () => ({
      capacity,
      used: records.reduce((n, r) => n + r.size, 0),
      free: capacity - records.reduce((n, r) => n + r.size, 0),
      maxRecords,
      records: [],
    }),
    close: async () => {},
  };
  for (const date of dates)
    void ring.append({
      label: encodeLabel({
        date,
        createdAt: 0,
        formatVersion: 2,
        poolUuid: 'p',
        srUuid: 'sr',
        vmCount: 1,
        templateCount: 0,
        rawBytes: 1,
      }),
      data: new Uint8Array(10),
    });
  return { ring, records };
}

function deps(
  ring: RingPort,
  legacyDates: string[],
  exportBytes = 10,
  vdiSize = 10_000_000,
  exportsPerBackup = 1,
) {
  /** Exports the conversion pulled from each legacy backup. */
  const pulled = new Map<string, number>();
  const pool = stubPool({
    backupVdiUuid: () => 'own',
    findVdi: async () => ({ ...STUB_BACKUP_VDI, uuid: 'own', virtualSize: vdiSize }),
    attach: async () => ({ devicePath: '/dev/x', detach: async () => {} }),
  });
  const disk: DiskPort = { open: async () => ring, format: async () => ring };
  const archive: ArchivePort = {
    // As the real writer: it stops pulling parts once past maxStoredBytes.
    async write(parts, opts) {
      let n = 0;
      for await (const p of parts) {
        n += p.data instanceof Uint8Array ? p.data.length : 0;
        if (n > (opts.maxStoredBytes ?? Number.POSITIVE_INFINITY))
          throw Object.assign(new Error('too large'), { code: 'ARCHIVE_TOO_LARGE' });
      }
      return { bytes: new Uint8Array(n), rawBytes: n, storedBytes: n, parts: [] };
    },
    read: () => {
      throw new Error('unused');
    },
  };
  const legacy: LegacyReaderPort = {
    read: (_vdi, fn) =>
      fn({
        dates: legacyDates,
        backup: (date) => ({
          date,
          async *vms() {
            for (let k = 0; k < exportsPerBackup; k++) {
              pulled.set(date, (pulled.get(date) ?? 0) + 1);
              yield {
                entry: { uuid: `vm-${k}`, name: 'vm', isTemplate: false, srUuids: ['sr'] },
                data: new Uint8Array(exportBytes),
              };
            }
          },
          srmetaXml: async () => null,
          poolDb: async () => null,
        }),
      }),
  };
  const clock = { now: () => new Date('2026-11-25T00:00:00Z') };
  return { pool, disk, archive, legacy, clock, events: null, pulled };
}

/** The fake legacy disk, with every backup failing to read with `code`. */
function failing(
  legacy: LegacyReaderPort,
  code: string,
  message: (date: string) => string,
): LegacyReaderPort {
  return {
    read: (vdi, fn) =>
      legacy.read(vdi, (src) =>
        fn({
          dates: src.dates,
          backup: (date) => ({
            ...src.backup(date),
            // biome-ignore lint/correctness/useYield: it fails before its first export
            async *vms() {
              throw Object.assign(new Error(message(date)), { code });
            },
          }),
        }),
      ),
  };
}

const old = ['2023-01-01-00-00-00', '2023-02-01-00-00-00', '2023-03-01-00-00-00'];

it('never evicts: when the ring has room for fewer, the newest are converted (oldest first), the rest skipped', async () => {
  const { ring, records } = memoryRing(1_000_000, 4, [
    '2024-05-01-00-00-00',
    '2024-06-01-00-00-00',
  ]);
  const events = new MemoryEventStore();
  const r = await runConvert(
    { ...deps(ring, [...old].reverse()), events },
    { srUuid: 'sr', legacyVdiUuid: 'legacy' },
  );
  expect(r.converted.map((c) => c.date)).toEqual(old.slice(1));
  expect(r.skipped).toEqual([
    { date: old[0], reason: expect.stringMatching(/maximum of 4 backups/) },
  ]);
  // Both newer backups are still there, and the converted records are marked as such.
  const dates = records.map((x) => decodeLabel(x.label));
  expect(dates.map((l) => l?.date)).toEqual([
    '2024-05-01-00-00-00',
    '2024-06-01-00-00-00',
    ...old.slice(1),
  ]);
  expect(dates.map((l) => l?.converted ?? false)).toEqual([false, false, true, true]);
  // Listed by date, not by ring order (the converted ones came in last).
  expect(listings(ring).map((l) => l.date)).toEqual([
    '2024-06-01-00-00-00',
    '2024-05-01-00-00-00',
    old[2],
    old[1],
  ]);
  const types: string[] = [];
  for await (const e of events.readAll()) types.push(e.type);
  expect(types).toEqual([
    'LegacyConvertStarted',
    'LegacyBackupConverted',
    'LegacyBackupConverted',
    'LegacyConvertFinished',
  ]);
});

it('never evicts for space either: the newest that fit are converted, the ring otherwise unchanged', async () => {
  const { ring, records } = memoryRing(30_000, 25, ['2024-05-01-00-00-00']);
  const r = await runConvert(deps(ring, old, 5_000), { srUuid: 'sr', legacyVdiUuid: 'legacy' });
  expect(r.converted.map((c) => c.date)).toEqual(old.slice(1));
  expect(r.skipped).toEqual([
    { date: old[0], reason: 'no room left on the backup disk without evicting a backup' },
  ]);
  expect(records.map((x) => decodeLabel(x.label)?.date)).toEqual([
    '2024-05-01-00-00-00',
    ...old.slice(1),
  ]);
  const { ring: small, records: kept } = memoryRing(100, 25, ['2024-05-01-00-00-00']);
  const none = await runConvert(deps(small, old, 500), { srUuid: 'sr', legacyVdiUuid: 'legacy' });
  expect(none.converted).toEqual([]);
  expect(kept.map((x) => x.seq)).toEqual([1]);
});

it('holds no more of a legacy disk in memory than the backup disk could take, newest first', async () => {
  // A (forged) legacy disk whose backups are far larger than the 12 kB backup disk: ten
  // exports of 500 bytes each.
  const { ring } = memoryRing(1_000_000, 25, []);
  const d = deps(ring, old, 500, 12_000, 10);
  const r = await runConvert(d, { srUuid: 'sr', legacyVdiUuid: 'legacy' });
  expect(r.converted.map((c) => c.date)).toEqual(old.slice(1));
  expect(r.skipped).toEqual([
    { date: old[0], reason: 'no room for it on the backup disk with the newer ones' },
  ]);
  // The oldest was read only until it no longer fit (under 2 kB were left), not whole.
  expect(d.pulled.get(old[0]!)).toBeLessThan(5);
  expect(d.pulled.get(old[1]!)).toBe(10);
  expect(d.pulled.get(old[2]!)).toBe(10);
});

it('a date not on the legacy disk fails before anything is written', async () => {
  const { ring, records } = memoryRing(1_000_000, 25, []);
  await expect(
    runConvert(deps(ring, old), {
      srUuid: 'sr',
      legacyVdiUuid: 'legacy',
      dates: ['2022-01-01-00-00-00'],
    }),
  ).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
  expect(records).toEqual([]);
});

it('a legacy backup the reader refuses is skipped with its code; with nothing left, nothing is touched', async () => {
  const { ring, records } = memoryRing(1_000_000, 25, []);
  const d = deps(ring, old);
  const touched: string[] = [];
  const pool = {
    ...d.pool,
    backupVdiUuid: () => 'legacy', // the legacy disk is the backup VDI itself
    copyVdi: async () => {
      touched.push('copyVdi');
      throw new Error('must not copy');
    },
    attach: async () => {
      touched.push('attach');
      throw new Error('must not attach');
    },
  };
  const broken = failing(d.legacy, 'LEGACY_CORRUPT', (date) => `directory of ${date} is wrecked`);
  const r = await runConvert(
    { ...d, pool, legacy: broken },
    { srUuid: 'sr', legacyVdiUuid: 'legacy' },
  );
  expect(r.converted).toEqual([]);
  expect(r.skipped).toEqual(
    old.map((date) => ({ date, reason: `LEGACY_CORRUPT: directory of ${date} is wrecked` })),
  );
  expect(touched).toEqual([]);
  expect(records).toEqual([]);
});

it('a future date is skipped; of very many dates only the newest 25 are read (a forged disk)', async () => {
  const { ring, records } = memoryRing(100_000_000, 25, []);
  const many = Array.from({ length: 200_000 }, (_, i) => {
    const t = Date.UTC(2000, 0, 1) + i * 60_000;
    return new Date(t).toISOString().replace(/[-T:]/g, '-').slice(0, 19);
  });
  const future = '2099-01-01-00-00-00';
  const d = deps(ring, [future, ...[...many].reverse()]);
  let reads = 0;
  const counting = {
    read: <T>(vdi: string, fn: Parameters<typeof d.legacy.read<T>>[1]) =>
      d.legacy.read(vdi, (src) =>
        fn({
          dates: src.dates,
          backup: (date) => {
            reads++;
            return src.backup(date);
          },
        }),
      ),
  };
  const r = await runConvert({ ...d, legacy: counting }, { srUuid: 'sr', legacyVdiUuid: 'l' });
  expect(reads).toBe(25);
  expect(r.converted.map((c) => c.date)).toEqual(many.slice(-25));
  expect(r.skipped.find((k) => k.date === future)?.reason).toBe('dated in the future');
  expect(r.skipped).toHaveLength(200_000 - 25 + 1);
  expect(records).toHaveLength(25);
});

it('the run stops before any write when the reader hits a limit; --date is refused on the backup VDI itself', async () => {
  const { ring, records } = memoryRing(1_000_000, 25, []);
  const d = deps(ring, old);
  const slow = failing(d.legacy, 'LEGACY_TIMEOUT', () => 'took too long');
  await expect(
    runConvert({ ...d, legacy: slow }, { srUuid: 'sr', legacyVdiUuid: 'legacy' }),
  ).rejects.toMatchObject({ code: 'LEGACY_TIMEOUT' });
  await expect(
    runConvert(
      { ...d, pool: { ...d.pool, backupVdiUuid: () => 'legacy' } },
      { srUuid: 'sr', legacyVdiUuid: 'legacy', dates: [old[0]!] },
    ),
  ).rejects.toMatchObject({ code: 'CONVERT_REFUSED' });
  expect(records).toEqual([]);
});

it('a failure once the legacy disk was copied names the copy to convert from', async () => {
  const { ring } = memoryRing(1_000_000, 25, []);
  const d = deps(ring, old);
  const pool = {
    ...d.pool,
    backupVdiUuid: () => 'legacy',
    copyVdi: async () => ({
      uuid: 'the-copy',
      name: '',
      srUuid: 'sr',
      virtualSize: 1,
      type: 'user',
    }),
  };
  const disk = {
    ...d.disk,
    format: async () => {
      throw Object.assign(new Error('I/O error'), { code: 'RING_IO' });
    },
  };
  await expect(
    runConvert({ ...d, pool, disk }, { srUuid: 'sr', legacyVdiUuid: 'legacy' }),
  ).rejects.toMatchObject({
    code: 'CONVERT_INTERRUPTED',
    message: expect.stringMatching(
      /I\/O error; the legacy disk is kept as VDI the-copy: run again with --vdi the-copy/,
    ),
  });
});

it('converts the one date asked for, recorded as coming from format 1', async () => {
  const { ring, records } = memoryRing(1_000_000, 25, []);
  const events = new MemoryEventStore();
  const r = await runConvert(
    { ...deps(ring, old), events },
    { srUuid: 'sr', legacyVdiUuid: 'legacy', dates: [old[1]!] },
  );
  expect(r.converted.map((c) => c.date)).toEqual([old[1]]);
  expect(records.map((x) => decodeLabel(x.label)).map((l) => [l?.date, l?.converted])).toEqual([
    [old[1], true],
  ]);
  const converted = [];
  for await (const e of events.readAll()) if (e.type === 'LegacyBackupConverted') converted.push(e);
  expect(converted).toMatchObject([
    { data: { date: old[1], fromFormatVersion: 1, formatVersion: BACKUP_FORMAT_VERSION } },
  ]);
});

it('a legacy backup beyond the record limits restore applies is skipped, never written; the others convert', async () => {
  const { ring, records } = memoryRing(1_000_000, 25, []);
  const d = deps(ring, old, 10, 10_000_000, 3);
  const write = d.archive.write;
  let calls = 0;
  // The real writer refuses an archive the reader would refuse (ARCHIVE_LIMIT): the second one.
  d.archive.write = async (parts, opts) => {
    if (++calls === 2)
      throw Object.assign(new Error('the backup holds more than 100000 parts: ...'), {
        code: 'ARCHIVE_LIMIT',
      });
    return write(parts, opts);
  };
  const r = await runConvert(d, { srUuid: 'sr', legacyVdiUuid: 'legacy' });
  expect(r.skipped).toEqual([
    { date: expect.any(String), reason: expect.stringMatching(/^ARCHIVE_LIMIT: .*100000 parts/) },
  ]);
  expect(r.converted).toHaveLength(2);
  expect(records).toHaveLength(2);
});
