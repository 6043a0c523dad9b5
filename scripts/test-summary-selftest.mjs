#!/usr/bin/env node
// Proves that scripts/test-summary.mjs prints its closing line and fails whatever went wrong:
// a failed test, a package whose report is missing (its run was killed), a test file that
// failed to run, and no test at all. Runs in `pnpm lint`. TEST_SUMMARY=<file> checks another
// summary script instead (to see the self-test fail on the old one).
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const summary = resolve(dirname(fileURLToPath(import.meta.url)), 'test-summary.mjs');
let failures = 0;

/** A fake repository: each package is [name, report | undefined (missing)]. */
function run(packages) {
  const root = mkdtempSync(join(tmpdir(), 'xsmeta-summary-'));
  try {
    mkdirSync(join(root, 'scripts'));
    for (const [name, report] of packages) {
      const dir = join(root, 'packages', name);
      mkdirSync(join(dir, 'test-results'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ scripts: { test: 'vitest run' } }));
      if (report !== undefined) {
        const body = typeof report === 'string' ? report : JSON.stringify(report);
        writeFileSync(join(dir, 'test-results', 'vitest.json'), body);
      }
    }
    // The summary finds the packages from its own place: run a copy inside the fake root.
    const copy = join(root, 'scripts', 'test-summary.mjs');
    writeFileSync(copy, readFileSync(process.env.TEST_SUMMARY ?? summary));
    const r = spawnSync(process.execPath, [copy], { encoding: 'utf8' });
    return { status: r.status, lines: r.stdout.trim().split('\n') };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function check(name, got, want) {
  const ok = got.status === want.status && got.lines.at(-1) === want.last;
  const named = (want.mentions ?? []).every((m) => got.lines.some((l) => l.includes(m)));
  if (ok && named) return;
  failures++;
  console.error(`test-summary self-test: ${name}: got ${JSON.stringify(got)}`);
}

const file = (root, status, tests) => ({
  name: `/x/packages/${root}/test/a.test.ts`,
  status,
  assertionResults: tests.map((s) => ({ status: s })),
});
const report = (passed, failed, files = []) => ({
  numPassedTests: passed,
  numFailedTests: failed,
  numPendingTests: 0,
  numTodoTests: 0,
  testResults: files,
});

check(
  'all passed',
  run([
    ['a', report(3, 0)],
    ['b', report(2, 0)],
  ]),
  {
    status: 0,
    last: '5 passed, 0 failed, 0 skipped',
  },
);
check(
  'a failed test',
  run([
    ['a', report(3, 1)],
    ['b', report(2, 0)],
  ]),
  {
    status: 1,
    last: '5 passed, 1 failed, 0 skipped',
  },
);
check(
  'a missing report',
  run([
    ['a', report(3, 0)],
    ['b', undefined],
  ]),
  {
    status: 1,
    last: '3 passed, 1 failed, 0 skipped',
    mentions: ['packages/b: FAILED: no test report (missing)'],
  },
);
check('an unreadable report', run([['a', '{"numPassed']]), {
  status: 1,
  last: '0 passed, 1 failed, 0 skipped',
  mentions: ['packages/a: FAILED: no test report (unreadable'],
});
check('a file that failed to run', run([['a', report(1, 0, [file('a', 'failed', [])])]]), {
  status: 1,
  last: '1 passed, 1 failed, 0 skipped',
  mentions: ['1 file(s) failed to run'],
});
check('no test at all', run([['a', report(0, 0)]]), {
  status: 1,
  last: '0 passed, 0 failed, 0 skipped',
});
if (failures > 0) process.exit(1);
console.log('test-summary self-test: 6 cases behave');
