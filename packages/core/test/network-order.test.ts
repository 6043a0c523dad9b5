/**
 * xapi's import matches a network by name_label, then by bridge, and creates it when neither
 * matches, with no lock in between (module Net, ocaml/xapi/import.ml). This fake pool does
 * the same: every import that looks up a missing network before another import created it
 * creates its own copy. A restore must never end with two networks of one name.
 */
import { describe, expect, it } from 'vitest';
import type { BackupContent, NetworkKey, VmMapEntry } from '../src/index.js';
import { restore, stubPool } from './stub-pool.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function racyPool(existing: NetworkKey[], failFirstOf: Set<string> = new Set()) {
  const networks: NetworkKey[] = [...existing];
  const order: string[] = [];
  const createdBy: string[] = [];
  let running = 0;
  let peak = 0;
  const pool = stubPool({
    findVdi: async () => null,
    async importMetadata(body) {
      const { uuid, nets } = JSON.parse(dec.decode(body)) as { uuid: string; nets: NetworkKey[] };
      running++;
      peak = Math.max(peak, running);
      try {
        // Look-up, then (after the other imports had their turn) create: no lock between.
        const missing = nets.filter(
          (n) =>
            !networks.some((m) => m.name === n.name) &&
            !networks.some((m) => m.bridge === n.bridge),
        );
        await new Promise((r) => setImmediate(r));
        if (failFirstOf.delete(uuid))
          throw Object.assign(new Error('VDI missing'), { code: 'VDI_LOCATION_MISSING' });
        for (const n of missing) {
          networks.push(n);
          createdBy.push(`${n.name} by ${uuid}`);
        }
        order.push(uuid);
      } finally {
        running--;
      }
    },
    networks: async () => [...networks],
    exportNetworks: (body) => (JSON.parse(dec.decode(body)) as { nets: NetworkKey[] }).nets,
  });
  return { pool, networks, order, createdBy, peak: () => peak };
}

function backup(vms: { uuid: string; nets: NetworkKey[] }[]): BackupContent {
  const map: VmMapEntry[] = vms.map((v) => ({
    uuid: v.uuid,
    name: v.uuid,
    isTemplate: false,
    srUuids: ['sr'],
  }));
  const bodies = new Map(vms.map((v) => [v.uuid, enc.encode(JSON.stringify(v))]));
  return {
    date: '2026-01-01-00-00-00',
    seq: 1,
    formatVersion: 1,
    poolUuid: 'old',
    vmMap: map,
    vmExport: (u) => bodies.get(u),
    srmeta: [],
  };
}

const lan = { name: 'Pool-wide network associated with eth0', bridge: 'xenbr0' };
const dmz = { name: 'DMZ', bridge: 'xapi1' };
const backend = { name: 'backend', bridge: 'xapi2' };

describe('restore into a pool that lacks some networks', () => {
  it('creates each missing network once, and still imports the others in parallel', async () => {
    const vms = Array.from({ length: 12 }, (_, i) => ({
      uuid: `vm-${String(i).padStart(2, '0')}`,
      nets: i % 3 === 0 ? [lan, dmz, backend] : i % 2 === 0 ? [lan, dmz] : [lan],
    }));
    const f = racyPool([lan]);
    const r = await restore(f.pool, backup(vms));
    expect(r.errors).toBe(0);
    expect(r.vms.map((v) => v.uuid)).toEqual(vms.map((v) => v.uuid));
    for (const n of [lan, dmz, backend])
      expect(f.networks.filter((m) => m.name === n.name)).toHaveLength(1);
    // vm-00, first of the backup to need the missing networks, creates both in its turn
    // (VMs needing only networks the pool has are imported beside it); those after it that
    // need them find them created.
    expect(f.createdBy).toEqual(['DMZ by vm-00', 'backend by vm-00']);
    expect(f.peak()).toBeGreaterThan(1);
  });

  it('a first import that fails creates nothing: the next VM needing that network goes alone', async () => {
    const vms = Array.from({ length: 8 }, (_, i) => ({ uuid: `vm-${i}`, nets: [dmz] }));
    const f = racyPool([], new Set(['vm-0']));
    const r = await restore(f.pool, backup(vms));
    expect(r.errors).toBe(1);
    expect(r.vms.find((v) => v.uuid === 'vm-0')).toMatchObject({
      ok: false,
      code: 'VDI_LOCATION_MISSING',
    });
    expect(f.networks.filter((m) => m.name === 'DMZ')).toHaveLength(1);
    expect(f.order[0]).toBe('vm-1');
    expect(f.createdBy).toEqual(['DMZ by vm-1']);
  });

  it('a network matched by its bridge is not missing (xapi reuses it)', async () => {
    const vms = Array.from({ length: 6 }, (_, i) => ({
      uuid: `vm-${i}`,
      nets: [{ name: 'renamed', bridge: 'xenbr0' }],
    }));
    const f = racyPool([lan]);
    await restore(f.pool, backup(vms));
    expect(f.networks).toEqual([lan]);
    expect(f.peak()).toBeGreaterThan(1);
  });
});
