// XML-RPC codec speed (issue 5, decision record of packages/xapi): decoding a
// VM.get_all_records answer of 1,000 VMs in xapi's dialect, ours against the codec that Xen
// Orchestra's `xen-api` client uses (@vates/xml parse + @vates/xml-rpc parser), in the same
// run. The baseline is read where pnpm installed `xen-api` and its codec (through
// apps/xapi-sim, or the store); when it is absent the rows carry no baseline.
import { readdirSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { decodeMethodResponse, encodeMethodResponse } from '@xsmeta/xapi';
import { row, runIfMain, timeMs } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

function vmRecord(i) {
  const rec = {
    uuid: `${String(i).padStart(8, '0')}-1111-4222-8333-444444444444`,
    name_label: `vm-${i} <web & db>`,
    name_description: 'a guest',
    power_state: i % 3 === 0 ? 'Running' : 'Halted',
    is_a_template: false,
    is_control_domain: false,
    is_a_snapshot: false,
    memory_static_max: '4294967296',
    memory_dynamic_max: '4294967296',
    VCPUs_max: '2',
    VBDs: [`OpaqueRef:vbd-${i}-0`, `OpaqueRef:vbd-${i}-1`, `OpaqueRef:vbd-${i}-2`],
    VIFs: [`OpaqueRef:vif-${i}-0`],
    other_config: { base_template_name: 'Debian', install_methods: 'cdrom,nfs,http,ftp' },
    platform: { acpi: '1', apic: 'true', pae: 'true', viridian: 'false', nx: 'true' },
    blocked_operations: {},
    tags: ['prod', 'web'],
    snapshot_time: new Date(Date.UTC(2024, 0, 1)),
  };
  for (let f = 0; f < 60; f++) rec[`field_${f}`] = f % 4 === 0 ? String(f * i) : `value-${f}`;
  return rec;
}

/** Finds @vates/<name> where pnpm installed it (through xen-api, or in the store). */
function locate(name) {
  try {
    const req = createRequire(
      realpathSync(join(ROOT, 'apps/xapi-sim/node_modules/xen-api/package.json')),
    );
    return req.resolve(name);
  } catch {
    const [pkg, sub] = [name.split('/').slice(0, 2).join('/'), name.split('/')[2]];
    const store = join(ROOT, 'node_modules/.pnpm');
    const dir = readdirSync(store).find((d) => d.startsWith(`${pkg.replace('/', '+')}@`));
    if (!dir) throw new Error(`${pkg} not installed`);
    return join(store, dir, 'node_modules', pkg, `${sub}.js`);
  }
}

async function loadBaseline() {
  try {
    const { parseXml } = await import(pathToFileURL(locate('@vates/xml/parse')).href);
    const { xmlRpcParser } = await import(pathToFileURL(locate('@vates/xml-rpc/parser')).href);
    return (xml) => xmlRpcParser.parse(parseXml(xml, { normalize: false, trim: false })).params[0];
  } catch {
    return undefined;
  }
}

async function best(fn, rounds) {
  let min = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) min = Math.min(min, await timeMs(fn));
  return min;
}

export async function run() {
  const all = {};
  for (let i = 0; i < 1000; i++) all[`OpaqueRef:vm-${i}`] = vmRecord(i);
  const xml = encodeMethodResponse({ Status: 'Success', Value: all });
  const mb = Buffer.byteLength(xml) / 1e6;
  const baseline = await loadBaseline();
  // warm up, and check both read the same thing
  const ours = decodeMethodResponse(xml);
  if (Object.keys(ours.Value).length !== 1000) throw new Error('decode mismatch');
  if (baseline) {
    const theirs = baseline(xml);
    if (Object.keys(theirs.Value).length !== 1000) throw new Error('baseline decode mismatch');
  }
  const oursMs = await best(() => decodeMethodResponse(xml), 5);
  const theirsMs = baseline ? await best(() => baseline(xml), 5) : null;
  const encMs = await best(() => encodeMethodResponse({ Status: 'Success', Value: all }), 5);
  return [
    row({
      bench: 'xapi-codec',
      metric: `decode get_all_records (1000 VMs, ${mb.toFixed(1)} MB)`,
      ours: mb / (oursMs / 1000),
      baseline: theirsMs === null ? null : mb / (theirsMs / 1000),
      unit: 'MB/s',
      goal: '>= 1x of xen-api codec',
      better: 'higher',
      pass: theirsMs === null ? null : oursMs <= theirsMs,
    }),
    row({
      bench: 'xapi-codec',
      metric: 'encode get_all_records (1000 VMs)',
      ours: mb / (encMs / 1000),
      unit: 'MB/s',
      better: 'higher',
    }),
  ];
}

await runIfMain(import.meta.url, run);
