/**
 * The SR/VDI names pass of a restore (SRMETA): names already right are not set again, the
 * VDIs go several at a time, and a failure skips the rest of that SR with its reason.
 */
import { describe, expect, it } from 'vitest';
import type { BackupContent, PoolPort, SrInfo } from '../src/index.js';
import { restore } from './stub-pool.js';

function namesPool(live: SrInfo[], failOn?: string) {
  const calls: string[] = [];
  let running = 0;
  let peak = 0;
  const pool = {
    pool: async () => ({ uuid: 'pool', defaultSrUuid: 'sr' }),
    srs: async () => live,
    backupVdiUuid: () => 'vdi',
    importMetadata: async () => {},
    async setSrNames(uuid: string, name: string) {
      calls.push(`sr ${uuid} ${name}`);
    },
    async setVdiNames(uuid: string, name: string) {
      running++;
      peak = Math.max(peak, running);
      try {
        await new Promise((r) => setImmediate(r));
        if (uuid === failOn) throw new Error(`VDI ${uuid} is gone`);
        calls.push(`vdi ${uuid} ${name}`);
      } finally {
        running--;
      }
    },
  } as unknown as PoolPort;
  return { pool, calls, peak: () => peak };
}

const vdi = (i: number, name: string) => ({ uuid: `vdi-${i}`, name, description: '' });

function content(srmeta: BackupContent['srmeta']): BackupContent {
  return {
    date: '2026-01-01-00-00-00',
    seq: 1,
    formatVersion: 1,
    poolUuid: 'old',
    vmMap: [],
    vmExport: () => undefined,
    srmeta,
  };
}

describe('restore of SR and VDI names', () => {
  const backup = content([
    {
      uuid: 'sr',
      name: 'Storage',
      description: '',
      vdis: Array.from({ length: 20 }, (_, i) => vdi(i, `disk ${i}`)),
    },
  ]);

  it('sets only the names that differ, several VDIs at a time', async () => {
    const f = namesPool([
      {
        uuid: 'sr',
        name: 'Storage',
        description: '',
        type: 'nfs',
        // Even VDIs already carry their names; odd ones were renamed by the SR scan.
        vdis: Array.from({ length: 20 }, (_, i) => vdi(i, i % 2 === 0 ? `disk ${i}` : '')),
      },
    ]);
    const r = await restore(f.pool, backup);
    expect(r.srs).toEqual([{ uuid: 'sr', restored: true }]);
    expect(f.calls.sort()).toEqual(
      Array.from({ length: 10 }, (_, k) => `vdi vdi-${2 * k + 1} disk ${2 * k + 1}`).sort(),
    );
    expect(f.peak()).toBeGreaterThan(1);
  });

  it('a renamed SR gets its name back; a VDI the SR lacks is left alone', async () => {
    const f = namesPool([
      { uuid: 'sr', name: 'SR scanned', description: '', type: 'nfs', vdis: [vdi(3, '')] },
    ]);
    await restore(f.pool, backup);
    expect(f.calls).toEqual(['sr sr Storage', 'vdi vdi-3 disk 3']);
  });

  it('a failure skips the rest of that SR, with the reason; a dry run sets nothing', async () => {
    const live: SrInfo[] = [
      {
        uuid: 'sr',
        name: '',
        description: '',
        type: 'nfs',
        vdis: Array.from({ length: 20 }, (_, i) => vdi(i, '')),
      },
    ];
    const f = namesPool(live, 'vdi-4');
    const r = await restore(f.pool, backup);
    expect(r.srs).toEqual([{ uuid: 'sr', restored: false, reason: 'VDI vdi-4 is gone' }]);
    // Those under way when it failed finish; none starts after it.
    expect(f.calls.length).toBeLessThan(20);
    const dry = namesPool(live);
    const d = await restore(dry.pool, backup, true);
    expect(d.srs).toEqual([{ uuid: 'sr', restored: true }]);
    expect(dry.calls).toEqual([]);
  });
});
