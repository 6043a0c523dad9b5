// Shared helpers for the benchmarks in bench/. Each bench/<name>.bench.mjs exports
// `async function run(): Promise<Row[]>`; bench/run.mjs runs them all, prints one table and
// writes bench/RESULTS.md. Run one alone with `node bench/<name>.bench.mjs`.
//
// A Row: { bench, metric, ours, baseline, unit, ratio, goal, pass }
//   ours / baseline: numbers (baseline may be null when the issue names none)
//   ratio: ours / baseline (or baseline / ours for "lower is better"), computed by row()
//   goal: text such as ">= 0.70 of raw write"; pass: boolean or null

import { XapiClient } from '@xsmeta/xapi';

/** Builds a Row. `better` says which direction of `ours` is an improvement. */
export function row({
  bench,
  metric,
  ours,
  baseline = null,
  unit = '',
  goal = '',
  better = 'higher',
  pass,
}) {
  let ratio = null;
  if (baseline !== null && baseline !== 0 && ours !== 0) {
    ratio = better === 'higher' ? ours / baseline : baseline / ours;
  }
  return { bench, metric, ours, baseline, unit, ratio, goal, pass: pass ?? null };
}

/** Runs fn and returns elapsed milliseconds (high resolution). */
export async function timeMs(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * A XapiClient logged in to a simulator started by startSim (its `env`), with up to
 * `maxSockets` requests at a time.
 */
export function connectSim(env, maxSockets) {
  return XapiClient.connect({
    url: env.XSMETA_URL,
    username: env.XSMETA_USERNAME,
    password: env.XSMETA_PASSWORD,
    maxSockets,
  });
}

const fmt = (v) =>
  v === null || v === undefined
    ? '-'
    : typeof v === 'number'
      ? Math.abs(v) >= 100
        ? v.toFixed(0)
        : Math.abs(v) >= 1
          ? v.toFixed(2)
          : v.toPrecision(3)
      : String(v);

/** Renders rows as a Markdown table. */
export function table(rows) {
  const head = ['bench', 'metric', 'ours', 'baseline', 'unit', 'ratio', 'goal', 'pass'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const pass = r.pass === null ? '-' : r.pass ? 'yes' : 'NO';
    lines.push(
      `| ${[r.bench, r.metric, fmt(r.ours), fmt(r.baseline), r.unit, r.ratio === null ? '-' : `${fmt(r.ratio)}x`, r.goal, pass].join(' | ')} |`,
    );
  }
  return lines.join('\n');
}

/** When a bench file is run directly, run it and print its table. */
export async function runIfMain(importMetaUrl, run) {
  const { pathToFileURL } = await import('node:url');
  if (process.argv[1] && importMetaUrl === pathToFileURL(process.argv[1]).href) {
    console.log(table(await run()));
  }
}
