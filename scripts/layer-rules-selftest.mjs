#!/usr/bin/env node
// Proves that the dependency rules in .dependency-cruiser.cjs bite: in a scratch copy of the
// layout, each forbidden import below must make dependency-cruiser fail, and a legal one must
// pass. Run by `pnpm lint` (and so by CI).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');

/** [description, files {path: content}, should it fail?] */
const cases = [
  [
    'legal: cli imports core',
    { 'packages/cli/src/a.ts': "import '../../core/src/index.js';\n" },
    false,
  ],
  ['core imports cli', { 'packages/core/src/a.ts': "import '../../cli/src/index.js';\n" }, true],
  [
    'core imports a package it does not declare',
    { 'packages/core/src/a.ts': "import '@xsmeta/xapi';\n" },
    true,
  ],
  [
    'core imports the LevelDB event store',
    { 'packages/core/src/a.ts': "import '../../eventstore-level/src/index.js';\n" },
    true,
  ],
  [
    'legal: eventstore-level imports core',
    { 'packages/eventstore-level/src/a.ts': "import '../../core/src/index.js';\n" },
    false,
  ],
  [
    'eventstore-level imports cli',
    { 'packages/eventstore-level/src/a.ts': "import '../../cli/src/index.js';\n" },
    true,
  ],
  [
    "core's domain imports its app layer",
    {
      'packages/core/src/app/record.ts': 'export const r = 1;\n',
      'packages/core/src/domain/runs.ts': "import '../app/record.js';\n",
    },
    true,
  ],
  [
    "legal: core's app layer imports its domain",
    {
      'packages/core/src/domain/runs.ts': 'export const r = 1;\n',
      'packages/core/src/app/record.ts': "import '../domain/runs.js';\n",
    },
    false,
  ],
  ['core imports node:fs', { 'packages/core/src/a.ts': "import 'node:fs';\n" }, true],
  [
    'vdi-store imports xapi',
    { 'packages/vdi-store/src/a.ts': "import '../../xapi/src/index.js';\n" },
    true,
  ],
  ['tui imports cli', { 'packages/tui/src/a.ts': "import '../../cli/src/index.js';\n" }, true],
  [
    'tui imports xapi (the console has only its ConsoleServices port)',
    { 'packages/tui/src/a.ts': "import '../../xapi/src/index.js';\n" },
    true,
  ],
  [
    'legal: legacy-compat imports core',
    { 'packages/legacy-compat/src/a.ts': "import '../../core/src/index.js';\n" },
    false,
  ],
  [
    'the simulator imports vdi-store',
    { 'apps/xapi-sim/src/a.ts': "import '../../../packages/vdi-store/src/index.js';\n" },
    true,
  ],
  [
    'a package imports an app',
    { 'packages/cli/src/a.ts': "import '../../../apps/xapi-sim/src/index.js';\n" },
    true,
  ],
  [
    'a cycle',
    {
      'packages/xapi/src/a.ts': "import './b.js';\nexport const a = 1;\n",
      'packages/xapi/src/b.ts': "import './a.js';\nexport const b = 1;\n",
    },
    true,
  ],
];

const base = {
  'packages/core/src/index.ts': 'export const core = 1;\n',
  'packages/cli/src/index.ts': 'export const cli = 1;\n',
  'packages/xapi/src/index.ts': 'export const xapi = 1;\n',
  'apps/xapi-sim/src/index.ts': 'export const sim = 1;\n',
  'packages/vdi-store/src/index.ts': 'export const store = 1;\n',
};

let failures = 0;
for (const [name, files, shouldFail] of cases) {
  const dir = mkdtempSync(join(tmpdir(), 'xsmeta-layers-'));
  try {
    for (const [path, content] of Object.entries({ ...base, ...files })) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    copyFileSync(join(root, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
    copyFileSync(join(root, 'tsconfig.base.json'), join(dir, 'tsconfig.base.json'));
    copyFileSync(join(root, 'tsconfig.depcruise.json'), join(dir, 'tsconfig.depcruise.json'));
    let failed = false;
    try {
      execFileSync(depcruise, ['packages', 'apps', '--config', '.dependency-cruiser.cjs'], {
        cwd: dir,
        stdio: 'pipe',
      });
    } catch {
      failed = true;
    }
    const ok = failed === shouldFail;
    if (!ok) failures++;
    console.log(
      `${ok ? 'ok  ' : 'FAIL'} layer rule: ${name} -> ${failed ? 'rejected' : 'accepted'}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (failures > 0) {
  console.error(
    `${failures} layer-rule self-test(s) failed: .dependency-cruiser.cjs does not enforce the layer rules`,
  );
  process.exit(1);
}
