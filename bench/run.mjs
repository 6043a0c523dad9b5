#!/usr/bin/env node
// Runs every bench/*.bench.mjs, prints one table, and writes bench/RESULTS.md with the
// machine, Node version and date. Usage: pnpm bench [name-filter]
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { table } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2] ?? '';
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.mjs') && f.includes(filter))
  .sort();
const rows = [];
const started = Date.now();
const loadAtStart = loadavg()[0];
for (const f of files) {
  process.stderr.write(`bench: ${f} ...\n`);
  const mod = await import(pathToFileURL(join(here, f)).href);
  const t0 = Date.now();
  rows.push(...(await mod.run()));
  process.stderr.write(`bench: ${f} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
}
const out = table(rows);
console.log(out);
const cpu = cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpus().length} x ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${process.platform}/${process.arch}`;
const doc = `# Benchmark results

Produced by \`pnpm bench\` (bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}.

- Machine: ${machine}
- Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s
- Load average (1 min) at start / end: ${loadAtStart.toFixed(1)} / ${loadavg()[0].toFixed(1)} on ${cpus().length} cores
  (the machine is shared: wall times vary with the other work; CPU-time rows vary less)
- Ratio: ours against the baseline named in the issue, measured in the same run
  (above 1 = better than the baseline, whichever direction "better" is for the metric).

${out}
${existsSync(join(here, 'NOTES.md')) ? `\n${readFileSync(join(here, 'NOTES.md'), 'utf8')}` : ''}`;
if (!filter) writeFileSync(join(here, 'RESULTS.md'), doc);
