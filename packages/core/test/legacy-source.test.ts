import { expect, it } from 'vitest';
import {
  checkNamedBackupVdi,
  chooseLegacyVdi,
  convertRefusal,
  type DiskPort,
  findLegacyVdis,
  type LegacySource,
  legacyListing,
  legacyNotes,
  legacyRestoreContent,
} from '../src/index.js';
import { FakePool } from '../src/test-support/fake-pool.js';

const coded = (code: string, message = code) => Object.assign(new Error(message), { code });

/** A disk whose open fails as the ring does on what the backup VDI holds. */
const diskHolding = (code: string): DiskPort => ({
  open: async () => {
    throw coded(code);
  },
  format: async () => {
    throw coded('UNUSED');
  },
});

/** A pool whose SR 0 holds the given user VDIs (and no backup VDI unless `backup`). */
function poolWith(vdis: string[], backup = false) {
  const pool = new FakePool();
  const sr = pool.srList[0]!.uuid;
  const add = (uuid: string) =>
    pool.vdis.set(uuid, {
      uuid,
      name: uuid,
      description: '',
      srUuid: sr,
      virtualSize: 1 << 20,
      type: 'user',
    });
  for (const v of vdis) add(v);
  if (backup) add(pool.backupVdiUuid(sr));
  return { pool, sr };
}

it('a scan finds the VDIs with the legacy layout; one is chosen, two are refused by name', async () => {
  const { pool, sr } = poolWith(['v-a', 'v-b', 'v-c']);
  const probed: string[] = [];
  const deps = (legacy: string[]) => ({
    pool,
    disk: diskHolding('RING_NOT_FORMATTED'),
    looksLegacy: async (u: string) => {
      probed.push(u);
      return legacy.includes(u);
    },
  });
  expect(await findLegacyVdis(deps(['v-b']), sr, undefined)).toEqual({
    how: 'scan',
    found: ['v-b'],
  });
  expect(probed.sort()).toEqual(['v-a', 'v-b', 'v-c']);
  expect(await chooseLegacyVdi(deps(['v-b']), sr, undefined)).toEqual({
    vdiUuid: 'v-b',
    how: 'scan',
  });
  expect(await chooseLegacyVdi(deps(['v-a', 'v-c']), sr, undefined)).toMatchObject({
    code: 'LEGACY_AMBIGUOUS',
    reason: expect.stringContaining('v-a, v-c'),
  });
  expect(await chooseLegacyVdi(deps([]), sr, undefined)).toMatchObject({
    code: 'LEGACY_UNAVAILABLE',
  });
});

it('a named VDI must be on the SR; the SR own ext3 backup VDI is read without a scan', async () => {
  const { pool, sr } = poolWith(['v-a'], true);
  const noScan = async () => {
    throw new Error('no scan expected');
  };
  const other = pool.srList[1]!.uuid;
  expect(
    await chooseLegacyVdi(
      { pool, disk: diskHolding('RING_FOREIGN'), looksLegacy: noScan },
      other,
      'v-a',
    ),
  ).toMatchObject({ code: 'VDI_NOT_ON_SR' });
  expect(
    await chooseLegacyVdi(
      { pool, disk: diskHolding('RING_FOREIGN'), looksLegacy: noScan },
      sr,
      undefined,
    ),
  ).toEqual({ vdiUuid: pool.backupVdiUuid(sr), how: 'backup-vdi' });
  // a ring of the new format: legacy without a name is unavailable (XenServer's rule)
  expect(
    await chooseLegacyVdi(
      { pool, disk: diskHolding('RING_DAMAGED'), looksLegacy: noScan },
      sr,
      undefined,
    ),
  ).toMatchObject({ code: 'LEGACY_UNAVAILABLE' });
});

/** A legacy source of these dates, newest first; each backup holds one VM. */
function source(dates: string[]): LegacySource {
  return {
    dates,
    backup: (date) => ({
      date,
      async *vms() {
        yield {
          entry: { uuid: `vm-${date}`, name: 'web', isTemplate: false, srUuids: ['sr'] },
          data: new Uint8Array([1, 2, 3]),
        };
      },
      srmetaXml: async () => null,
      poolDb: async () => null,
    }),
  };
}

it('a legacy restore reads the newest backup unless a date is named; an unknown date is refused', async () => {
  const src = source(['2024-02-01-00-00-00', '2024-01-01-00-00-00']);
  const newest = await legacyRestoreContent(src, undefined);
  expect(newest).toMatchObject({ date: '2024-02-01-00-00-00', seq: null, srmeta: [] });
  if ('code' in newest) throw new Error('refused');
  expect(newest.vmMap.map((v) => v.uuid)).toEqual(['vm-2024-02-01-00-00-00']);
  expect(newest.vmExport('vm-2024-02-01-00-00-00')).toEqual(new Uint8Array([1, 2, 3]));
  expect(await legacyRestoreContent(src, '2024-01-01-00-00-00')).toMatchObject({
    date: '2024-01-01-00-00-00',
  });
  expect(await legacyRestoreContent(src, '2023-01-01-00-00-00')).toMatchObject({
    code: 'NO_LEGACY_BACKUP',
    reason: expect.stringContaining('available: 2024-02-01-00-00-00, 2024-01-01-00-00-00'),
  });
  expect(await legacyRestoreContent(source([]), undefined)).toMatchObject({
    code: 'NO_LEGACY_BACKUP',
  });
});

it('a listing marks a backup the reader refuses as damaged, but a time-out or limit ends it', async () => {
  const disk = (fail: Error) => ({
    dates: ['d2', 'd1'],
    skipped: [{ path: '/metadata/x', reason: 'bad link' }],
    warnings: [],
    backup: async (date: string) => {
      if (date === 'd2') throw fail;
      return { vms: [1, 2] };
    },
  });
  expect(await legacyListing(disk(coded('LEGACY_CORRUPT', 'torn')))).toEqual({
    backups: [
      { date: 'd2', vmCount: 0, damaged: 'LEGACY_CORRUPT: torn' },
      { date: 'd1', vmCount: 2 },
    ],
    skipped: [
      { path: '/metadata/x', reason: 'bad link' },
      { path: '/metadata/d2', reason: 'LEGACY_CORRUPT: torn' },
    ],
  });
  await expect(legacyListing(disk(coded('LEGACY_TIMEOUT')))).rejects.toThrow('LEGACY_TIMEOUT');
  await expect(legacyListing(disk(coded('LEGACY_LIMIT')))).rejects.toThrow('LEGACY_LIMIT');
  await expect(legacyListing(disk(new Error('EIO')))).rejects.toThrow('EIO');
});

it("a restore's notes are the disk's warnings and that backup's skipped entries only", () => {
  const d = {
    warnings: ['journal not replayed'],
    skipped: [
      { path: '/metadata/d1/by-sr/x', reason: 'bad link' },
      { path: '/metadata/d2', reason: 'unreadable' },
    ],
  };
  expect(legacyNotes(d, 'd1')).toEqual([
    'warning: journal not replayed',
    'skipped /metadata/d1/by-sr/x: bad link',
  ]);
  expect(legacyNotes(d)).toHaveLength(3);
});

it('a named backup VDI is trusted only when it is the SR own; any other is UNTRUSTED_VDI', async () => {
  const pool = new FakePool();
  const sr = pool.srList[1]!.uuid;
  await expect(checkNamedBackupVdi(pool, sr, pool.backupVdiUuid(sr))).resolves.toBe(sr);
  // the default SR's own VDI is not the named SR's
  const other = pool.backupVdiUuid(pool.srList[0]!.uuid);
  await expect(checkNamedBackupVdi(pool, sr, other)).rejects.toMatchObject({
    code: 'UNTRUSTED_VDI',
  });
  // no SR named: the pool's default SR's
  await expect(checkNamedBackupVdi(pool, undefined, other)).resolves.toBe(pool.srList[0]!.uuid);
});

it('a conversion never takes a disk a scan found, only the SR own backup VDI or a named one', () => {
  expect(convertRefusal({ vdiUuid: 'v-a', how: 'scan' })).toMatchObject({
    code: 'LEGACY_UNAVAILABLE',
    reason: expect.stringContaining('--vdi v-a'),
  });
  expect(convertRefusal({ vdiUuid: 'v-a', how: 'named' })).toBeNull();
  expect(convertRefusal({ vdiUuid: 'v-a', how: 'backup-vdi' })).toBeNull();
});
