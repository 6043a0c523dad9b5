#!/usr/bin/env node
// Prints the closing line of the whole suite, "N passed, N failed, N skipped", from the JSON
// reports that each package's vitest run writes to test-results/vitest.json. Every package with
// a `test` script is expected to leave a report: a missing or unreadable one (its run crashed or
// was killed) counts as one failure and is named. A test file that failed to run (a crash at
// import, a worker lost) counts as one failure too. Exits 1 when anything failed or when no test
// ran at all (an empty suite is a broken suite). Always prints the closing line.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folders (relative to the root) of the packages that have a `test` script. */
export function testedPackages(root) {
  const out = [];
  for (const group of ['packages', 'apps']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const manifest = join(dir, name, 'package.json');
      if (!existsSync(manifest)) continue;
      try {
        if (JSON.parse(readFileSync(manifest, 'utf8')).scripts?.test) out.push(`${group}/${name}`);
      } catch {
        out.push(`${group}/${name}`);
      }
    }
  }
  return out;
}

export function reportPath(root, pkg) {
  return join(root, pkg, 'test-results', 'vitest.json');
}

/**
 * Reads every package's report; returns the lines to print and the totals. With `requireAll`
 * false (a filtered run), a package without a report did not run and is left out.
 */
export function summarize(root, { requireAll = true } = {}) {
  const lines = [];
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  for (const pkg of testedPackages(root)) {
    const file = reportPath(root, pkg);
    let report;
    if (!requireAll && !existsSync(file)) continue;
    try {
      report = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      failed += 1;
      const why = existsSync(file) ? `unreadable (${e.message})` : 'missing';
      lines.push(`${pkg}: FAILED: no test report (${why}): its test run did not finish`);
      continue;
    }
    const p = report.numPassedTests ?? 0;
    const f = report.numFailedTests ?? 0;
    const s = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
    // A file that failed outside any test (import error, lost worker) has no failed test in it.
    const brokenFiles = (report.testResults ?? []).filter(
      (t) =>
        t.status === 'failed' && !(t.assertionResults ?? []).some((a) => a.status === 'failed'),
    );
    passed += p;
    failed += f + brokenFiles.length;
    skipped += s;
    let line = `${pkg}: ${p} passed, ${f} failed`;
    if (s > 0) line += `, ${s} skipped`;
    if (brokenFiles.length > 0) {
      const names = brokenFiles.map((t) => t.name.slice(join(root, pkg).length + 1));
      line += `; ${brokenFiles.length} file(s) failed to run, counted as failed: ${names.join(', ')}`;
    }
    lines.push(line);
  }
  return { lines, passed, failed, skipped };
}

const self = fileURLToPath(import.meta.url);
if (process.argv[1] && resolve(process.argv[1]) === self) {
  const { lines, passed, failed, skipped } = summarize(resolve(dirname(self), '..'));
  for (const l of lines) console.log(l);
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  if (failed > 0 || passed === 0) process.exit(1);
}
