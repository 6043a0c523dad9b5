/**
 * The backup's fast path asks `export_metadata?all=true` once and splits it into per-VM
 * exports. Here the split is checked against what xapi sends for each VM on its own: both
 * exports are built from a seeded pool's records by `xapiExport` (xapi-export-model.ts), which follows
 * ocaml/xapi/export.ml (update_table, the make_* functions, make_all's class order, and
 * the export-local `Ref:N` ids of a counter shared by every export). For every VM, the split
 * must hold the same objects with the same fields, references compared by what they point at.
 * The second test does the same with the simulator's own exports (apps/xapi-sim follows
 * export.ml): its all=true tar split, against its per-VM tar of each VM.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XapiClient as Client, readOva, splitExport, splitExportTar, writeOva } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { describe, expect, it } from 'vitest';
import { pool } from './support.js';
import {
  canonical,
  enrich,
  placeOnHost,
  type Rec,
  readDb,
  xapiExport,
} from './xapi-export-model.js';

describe('export_metadata?all=true split client-side (the backup fast path)', () => {
  it('gives, for every VM of a seeded pool, the objects and fields of its own export', async () => {
    const p = await pool({ vms: 12, srs: 2 });
    const xapi = await Client.connect({
      url: p.env.XSMETA_URL!,
      username: 'root',
      password: p.env.XSMETA_PASSWORD!,
    });
    try {
      const db = await readDb(xapi);
      enrich(db);
      const vms = db.get('VM')!;
      // all=true: every VM but default templates and (include_dom0=false) the control domain.
      const exported = [...vms.entries()]
        .filter(([, v]) => {
          const oc = v.other_config as Record<string, string>;
          const dflt =
            v.is_default_template === true ||
            (v.is_a_template === true && oc.default_template === 'true');
          return !dflt && v.is_control_domain !== true;
        })
        .map(([ref]) => ref);
      const all = readOva(writeOva(xapiExport(db, exported, false)));
      // The VMs a backup exports: no snapshots (they are VMs too, and in the all=true export).
      const wanted = exported.filter((ref) => vms.get(ref)!.is_a_snapshot !== true);
      expect(wanted.length).toBeGreaterThan(10);
      expect(exported.length).toBeGreaterThan(wanted.length);
      const split = splitExport(
        all,
        wanted.map((ref) => String(vms.get(ref)!.uuid)),
      );
      expect(split.size).toBe(wanted.length);
      for (const ref of wanted) {
        const uuid = String(vms.get(ref)!.uuid);
        const alone = readOva(writeOva(xapiExport(db, [ref], false)));
        const mine = readOva(writeOva(split.get(uuid)!));
        expect(canonical(mine)).toEqual(canonical(alone));
        // Same class order as make_all.
        expect(mine.objects.map((o) => o.class)).toEqual(alone.objects.map((o) => o.class));
      }
    } finally {
      await xapi.logout();
      await p.close();
    }
  }, 60_000);

  it("equals, on the simulator, each VM's own export for every VM of the all=true export", async () => {
    // The simulator's exports follow export.ml (apps/xapi-sim), so here both sides are what
    // the pool sends: one all=true request, and one request per VM with its uuid.
    const p = await pool({ vms: 12, srs: 2 });
    // What the seeded pool lacks and a real one has: running VMs resident on the host (in
    // host.resident_VMs), VMs with an affinity. The simulator has no VM.start: its saved
    // state is edited while it is down.
    await p.sim.close();
    const state = join(p.dir, 'sim', 'pool.json');
    const saved = JSON.parse(await readFile(state, 'utf8')) as {
      db: Record<string, Record<string, Rec>>;
    };
    const [hostRef, host] = Object.entries(saved.db.host!)[0]!;
    host.resident_VMs = [];
    let i = 0;
    for (const [ref, vm] of Object.entries(saved.db.VM!)) {
      if (vm.is_a_template === true || vm.is_control_domain === true || vm.is_a_snapshot === true)
        continue;
      i++;
      placeOnHost(i, ref, vm, host, hostRef);
    }
    await writeFile(state, JSON.stringify(saved));
    const sim = await startSimulator({ stateDir: join(p.dir, 'sim') });
    const xapi = await Client.connect({
      url: sim.url,
      username: 'root',
      password: sim.env.XSMETA_PASSWORD!,
    });
    try {
      const vms = await xapi.getAllRecords<Rec>('VM');
      const allTar = await xapi.exportMetadata(
        { all: true },
        { exportSnapshots: false, includeDom0: false },
      );
      const all = readOva(allTar);
      expect([...new Set(all.objects.map((o) => o.class))].sort()).toEqual(
        ['SR', 'VBD', 'VDI', 'VIF', 'VM', 'host', 'network'].sort(),
      );
      const uuids = all.objects.filter((o) => o.class === 'VM').map((o) => String(o.snapshot.uuid));
      // Every VM but default templates and the control domain: guests, custom templates and
      // snapshots (VMs too), each compared with its own export.
      const expected = [...vms.values()].filter((v) => {
        const oc = v.other_config as Record<string, string>;
        return (
          v.is_control_domain !== true &&
          !(v.is_a_template === true && oc.default_template === 'true')
        );
      });
      expect(uuids.sort()).toEqual(expected.map((v) => String(v.uuid)).sort());
      expect(expected.some((v) => v.is_a_snapshot === true)).toBe(true);
      expect(expected.some((v) => v.is_a_template === true)).toBe(true);
      const split = splitExport(all, uuids);
      expect([...split.keys()].sort()).toEqual(uuids);
      // The backup's split on the export's text (splitExportTar) gives the same.
      const onText = splitExportTar(allTar, uuids);
      expect([...onText.keys()].sort()).toEqual(uuids);
      for (const uuid of uuids) {
        const alone = readOva(await xapi.exportMetadata({ uuid }, { exportSnapshots: false }));
        const mine = readOva(writeOva(split.get(uuid)!));
        expect(canonical(mine), uuid).toEqual(canonical(alone));
        expect(mine.objects.map((o) => o.class)).toEqual(alone.objects.map((o) => o.class));
        const text = readOva(onText.get(uuid)!());
        expect(canonical(text), uuid).toEqual(canonical(alone));
        expect(text.objects.map((o) => o.class)).toEqual(alone.objects.map((o) => o.class));
      }
    } finally {
      await xapi.logout();
      await sim.close();
      await p.close();
    }
  }, 60_000);
});
