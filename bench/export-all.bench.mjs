// The backup's fast path (issue 17): one export_metadata?all=true request split client-side
// into per-VM exports, against one request per VM. The simulator does not serve all=true
// yet, so the one-request export is assembled here from the per-VM exports of a 1,000-VM
// pool (objects merged by class and uuid, references re-pointed); what is timed is the
// client's whole share of the fast path (parse, split, re-encode every VM's export) against
// the per-VM requests it replaces, sequential (as the legacy script) and 8 at a time (as
// xsmeta's per-VM path). The pool's own cost of the one request is not measured here.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readOva, splitExport, writeOva } from '@xsmeta/xapi';
import { startSim } from './backup.bench.mjs';
import { connectSim, row, runIfMain, timeMs } from './lib.mjs';

const VMS = 1000;
const PARALLEL = 8;

/** One export holding every VM's objects, as all=true gives (ids renumbered, lists merged). */
function merge(ovas) {
  const ids = new Map(); // class:uuid -> global id
  const objects = new Map(); // global id -> object
  for (const ova of ovas) {
    const local = new Map(
      ova.objects.map((o) => {
        const key = `${o.class}:${String(o.snapshot.uuid)}`;
        if (!ids.has(key)) ids.set(key, `Ref:${ids.size}`);
        return [o.id, ids.get(key)];
      }),
    );
    const map = (v) =>
      typeof v === 'string' && v.startsWith('Ref:')
        ? (local.get(v) ?? 'OpaqueRef:NULL')
        : Array.isArray(v)
          ? v.map(map)
          : v;
    for (const o of ova.objects) {
      const id = local.get(o.id);
      const snapshot = Object.fromEntries(Object.entries(o.snapshot).map(([k, v]) => [k, map(v)]));
      const seen = objects.get(id);
      if (!seen) {
        objects.set(id, { class: o.class, id, snapshot });
        continue;
      }
      for (const [k, v] of Object.entries(snapshot))
        if (Array.isArray(v) && Array.isArray(seen.snapshot[k]))
          seen.snapshot[k] = [...new Set([...seen.snapshot[k], ...v])];
    }
  }
  const all = [...objects.values()];
  return { version: ovas[0].version, objects: all };
}

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-export-all-'));
  const bench = 'backup fast path (issue 17)';
  let sim;
  try {
    sim = await startSim(join(scratch, 'sim'), ['--vms', String(VMS)]);
    const client = await connectSim(sim.env, PARALLEL);
    try {
      const vms = [...(await client.getAllRecords('VM')).values()].filter(
        (vm) => !vm.is_control_domain && !vm.is_a_snapshot && !vm.is_default_template,
      );
      const tars = [];
      const seqMs = await timeMs(async () => {
        for (const vm of vms) tars.push(await client.exportMetadata({ uuid: vm.uuid }));
      });
      let next = 0;
      const parMs = await timeMs(() =>
        Promise.all(
          Array.from({ length: PARALLEL }, async () => {
            while (next < vms.length) await client.exportMetadata({ uuid: vms[next++].uuid });
          }),
        ),
      );
      const all = writeOva(merge(tars.map((t) => readOva(t))));
      let bytes = 0;
      const splitMs = await timeMs(async () => {
        const parts = splitExport(
          readOva(all),
          vms.map((v) => v.uuid),
        );
        for (const ova of parts.values()) bytes += writeOva(ova).length;
        if (parts.size !== vms.length) throw new Error(`split gave ${parts.size} VMs`);
      });
      const mib = (all.length / 2 ** 20).toFixed(1);
      return [
        row({
          bench,
          metric: `split of one all=true export (${vms.length} VMs, ${mib} MiB) into per-VM exports (${(bytes / 2 ** 20).toFixed(1)} MiB), client CPU, vs ${vms.length} sequential per-VM requests`,
          ours: splitMs / 1000,
          baseline: seqMs / 1000,
          unit: 's',
          better: 'lower',
        }),
        row({
          bench,
          metric: `the same split vs ${vms.length} per-VM requests, ${PARALLEL} at a time (xsmeta's per-VM path)`,
          ours: splitMs / 1000,
          baseline: parMs / 1000,
          unit: 's',
          better: 'lower',
        }),
      ];
    } finally {
      await client.logout();
    }
  } finally {
    await sim?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

await runIfMain(import.meta.url, run);
