#!/usr/bin/env node
// `pnpm test`: every package's tests through turbo, then the closing summary line.
// - `--continue`: a failing package does not stop the others; every package reports.
// - Old reports are removed first, so a package whose run dies shows as missing, not as the
//   result of an earlier run (turbo restores a cached package's report itself).
// - At most XSMETA_TEST_CONCURRENCY packages (default 2) test at once: on two busy cores more
//   only make every test slower (measured: see the README's "Developing" section).
// - The summary is printed whatever happened; the exit code is non-zero when turbo or the
//   summary saw a failure.
// Extra arguments go to turbo (e.g. `pnpm test --filter @xsmeta/core`).
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reportPath, summarize, testedPackages } from './test-summary.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const concurrency = process.env.XSMETA_TEST_CONCURRENCY ?? '2';

for (const pkg of testedPackages(root)) rmSync(reportPath(root, pkg), { force: true });
const turbo = spawnSync(
  'turbo',
  ['run', 'test', '--continue', `--concurrency=${concurrency}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);
if (turbo.error) console.error(`test: could not start turbo: ${turbo.error.message}`);
// With a filter, only the packages that ran are expected to have reports.
const filtered = process.argv.length > 2;
const { lines, passed, failed, skipped } = summarize(root, { requireAll: !filtered });
for (const l of lines) console.log(l);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
const ok = turbo.status === 0 && failed === 0 && passed > 0;
if (!ok && failed === 0 && turbo.status !== 0) console.log(`turbo exited with ${turbo.status}`);
process.exit(ok ? 0 : 1);
