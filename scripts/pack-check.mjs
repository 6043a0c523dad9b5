#!/usr/bin/env node
// `pnpm run pack-check`: the packages others can use install and work on their own.
// 1. builds (turbo; cached when `pnpm check` has just built);
// 2. packs every publishable package (`pnpm pack`, which applies `publishConfig` and turns
//    `workspace:*` / `catalog:` into versions) into a temporary folder;
// 3. checks each packed package.json and tarball (scripts/pack-rules.mjs, proved by
//    pack-check-selftest.mjs): a version, not private, no `source` condition, no workspace or
//    catalog range, `engines.node`, every file that exports/main/types/bin name is in the
//    tarball, nothing but dist/, bin/, README.md, LICENSE and package.json in it, no test file,
//    and no output in dist/ of a source that is gone (nor a bundle chunk nothing imports);
// 4. `npm install`s the tarballs into an empty folder (ours from the tarballs, third-party
//    dependencies from the npm registry);
// 5. imports every package and subpath there;
// 6. type-checks (against the published types) and runs each package README's "Use it on its
//    own" examples: a ```js block is run with node, and when a ```text block follows it, what it
//    printed must be exactly that; the lines of a ```sh block are run with sh (but `npm install`);
// 7. runs the installed `xsmeta`, `xe-backup-metadata` and `xe-restore-metadata --version`.
// One line per step; the first failure prints `pack-check: FAILED at <step>: <why>` and exits 1,
// leaving the temporary folder for a look. `--keep` keeps it on success too.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleChunkRefs, manifestProblems, readmeExamples, staleOutputs } from './pack-rules.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The publishable packages. `tui` is one because the cli depends on it. `skipImports` names
 * subpaths not imported here, with why.
 */
const PACKAGES = [
  { dir: 'packages/core' },
  { dir: 'packages/vdi-store' },
  { dir: 'packages/xapi' },
  { dir: 'packages/legacy-compat' },
  {
    dir: 'packages/eventstore-level',
    skipImports: { './test-suite': 'needs vitest, an optional peer dependency' },
  },
  { dir: 'packages/tui' },
  { dir: 'packages/cli' },
];
const BINS = ['xsmeta', 'xe-backup-metadata', 'xe-restore-metadata'];
const keep = process.argv.includes('--keep');

const work = mkdtempSync(join(tmpdir(), 'xsmeta-pack-check-'));
const packs = join(work, 'packs');
const app = join(work, 'app');
mkdirSync(packs);
mkdirSync(app);

// The children get none of the `npm_*` settings `pnpm run` exports (this repo's .npmrc): the
// install folder must behave like a stranger's.
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')),
);

let step = 'start';
function fail(why) {
  console.log(`pack-check: FAILED at ${step}: ${why} (files kept in ${work})`);
  process.exit(1);
}
function ok(detail) {
  console.log(`pack-check: ${step}: ok${detail ? ` (${detail})` : ''}`);
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: cleanEnv,
    ...opts,
  });
  if (r.error) fail(`could not start ${cmd}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    fail(`\`${[cmd, ...args].join(' ')}\` exited with ${r.status ?? r.signal}:\n${out}`);
  }
  return r.stdout;
}
/** The files under `dir`, as paths relative to it (none when it does not exist). */
const listFiles = (dir) =>
  existsSync(dir)
    ? readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile())
        .map((d) => join(d.parentPath ?? d.path, d.name).slice(dir.length + 1))
    : [];
const seconds = (t0) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

/** pnpm as this script was started by it (`pnpm run`), else pnpm 10 through npx. */
function pnpm() {
  const exec = process.env.npm_execpath;
  if (process.env.npm_config_user_agent?.startsWith('pnpm/') && exec && /pnpm/.test(exec)) {
    return exec.endsWith('.js') || exec.endsWith('.cjs') ? [process.execPath, [exec]] : [exec, []];
  }
  return ['npx', ['-y', 'pnpm@10']];
}

// 1. Build.
step = 'build';
let t0 = performance.now();
const [pnpmCmd, pnpmArgs] = pnpm();
run(pnpmCmd, [...pnpmArgs, 'exec', 'turbo', 'run', 'build', '--output-logs=errors-only'], {
  cwd: root,
  env: process.env,
});
ok(seconds(t0));

// 2. Pack.
step = 'pack';
t0 = performance.now();
const manifests = PACKAGES.map((p) => ({
  ...p,
  source: JSON.parse(readFileSync(join(root, p.dir, 'package.json'), 'utf8')),
}));
run(
  pnpmCmd,
  [
    ...pnpmArgs,
    '--recursive',
    ...manifests.flatMap((m) => ['--filter', m.source.name]),
    'pack',
    '--pack-destination',
    packs,
  ],
  { cwd: root, env: process.env },
);
for (const m of manifests) {
  m.tarball = join(
    packs,
    `${m.source.name.replace(/^@/, '').replace('/', '-')}-${m.source.version}.tgz`,
  );
  if (!existsSync(m.tarball)) fail(`${m.source.name}: no ${basename(m.tarball)} after pnpm pack`);
}
ok(`${manifests.length} tarballs, ${seconds(t0)}`);

// 3. The packed manifests, and what the tarballs hold.
const ours = new Set(manifests.map((m) => m.source.name));
for (const m of manifests) {
  const name = m.source.name;
  step = `manifest ${name}`;
  const dist = listFiles(join(root, m.dir, 'dist'));
  const scripts = dist
    .filter((f) => f.endsWith('.js'))
    .map((f) => ({ path: f, text: readFileSync(join(root, m.dir, 'dist', f), 'utf8') }));
  const stale = staleOutputs(dist, listFiles(join(root, m.dir, 'src')), bundleChunkRefs(scripts));
  if (stale.length) {
    fail(
      `${m.dir}/dist holds output of sources that are gone (${stale.slice(0, 3).join(', ')}): ` +
        `remove ${m.dir}/dist and build again`,
    );
  }
  const files = run('tar', ['-tzf', m.tarball])
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  m.packed = JSON.parse(run('tar', ['-xzOf', m.tarball, 'package/package.json']));
  const problems = manifestProblems({ pkg: m.packed, files, version: m.source.version, ours });
  if (problems.length) fail(problems.join('; '));
  ok(`${files.length} files`);
}

// 4. Install into an empty folder.
step = 'npm install';
t0 = performance.now();
writeFileSync(
  join(app, 'package.json'),
  `${JSON.stringify({ name: 'pack-check-app', private: true, type: 'module' }, null, 2)}\n`,
);
run(
  'npm',
  ['install', '--no-audit', '--no-fund', '--loglevel=error', ...manifests.map((m) => m.tarball)],
  { cwd: app },
);
ok(`${manifests.length} tarballs and their dependencies, ${seconds(t0)}`);

// 5. Import every package and subpath.
for (const m of manifests) {
  const name = m.source.name;
  step = `import ${name}`;
  const subpaths = Object.keys(m.packed.exports ?? {}).filter(
    (s) => s !== './package.json' && !m.skipImports?.[s],
  );
  if (subpaths.length === 0) {
    // A package of commands only (the cli): its exports close everything but package.json.
    const v = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
         console.log(createRequire(process.cwd() + '/')(${JSON.stringify(`${name}/package.json`)}).version);`,
      ],
      { cwd: app },
    ).trim();
    if (v !== m.source.version) fail(`${name}/package.json says ${v}`);
    ok(`commands only; ${name}/package.json resolves`);
    continue;
  }
  const specifiers = subpaths.map((s) => (s === '.' ? name : `${name}${s.slice(1)}`));
  const counts = run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `for (const s of ${JSON.stringify(specifiers)}) {
         const n = Object.keys(await import(s)).length;
         if (n === 0) throw new Error(s + ' exports nothing');
         console.log(s + ': ' + n + ' exports');
       }`,
    ],
    { cwd: app },
  );
  const skipped = Object.entries(m.skipImports ?? {}).map(
    ([s, why]) => `; ${s} not imported: ${why}`,
  );
  ok(counts.trim().split('\n').join(', ') + skipped.join(''));
}

// 6. The READMEs' "Use it on its own" examples.
step = 'README examples';
const examples = [];
for (const m of manifests) {
  const name = m.source.name;
  const found = readmeExamples(readFileSync(join(root, m.dir, 'README.md'), 'utf8'), name);
  if (found.problem) fail(`${m.dir}/README.md: ${found.problem}`);
  found.examples.forEach((e, i) => {
    examples.push({ ...e, name, file: join(app, `readme-${basename(m.dir)}-${i + 1}.mjs`) });
  });
}
const jsExamples = examples.filter((e) => e.lang === 'js');
for (const e of jsExamples) writeFileSync(e.file, e.code);
t0 = performance.now();
run(
  join(root, 'node_modules', '.bin', 'tsc'),
  [
    '--noEmit',
    '--strict',
    '--allowJs',
    '--checkJs',
    '--skipLibCheck',
    '--module',
    'nodenext',
    '--moduleResolution',
    'nodenext',
    '--target',
    'es2022',
    '--lib',
    'es2023',
    '--types',
    'node',
    '--typeRoots',
    join(root, 'node_modules', '@types'),
    ...jsExamples.map((e) => e.file),
  ],
  { cwd: app },
);
console.log(
  `pack-check: README examples: type-checked ${jsExamples.length} against the published types (${seconds(t0)})`,
);
for (const e of examples) {
  step = `README example of ${e.name} (${e.lang === 'js' ? basename(e.file) : e.lines.join('; ')})`;
  const out =
    e.lang === 'js'
      ? run(process.execPath, [e.file], { cwd: app })
      : e.lines.map((l) => run('sh', ['-c', l], { cwd: app })).join('');
  if (e.expect !== null && out.trimEnd() !== e.expect) {
    fail(`it printed\n${out.trimEnd()}\nbut its README shows\n${e.expect}`);
  }
  ok(e.expect !== null ? 'printed what the README shows' : `${e.lang}, exit 0`);
}

// 7. The installed commands.
const cli = manifests.find((m) => m.source.name === '@xsmeta/cli');
for (const bin of BINS) {
  step = `${bin} --version`;
  const path = join(app, 'node_modules', '.bin', bin);
  if (!existsSync(path)) fail(`node_modules/.bin/${bin} was not installed`);
  const v = run(path, ['--version'], { cwd: app }).trim();
  if (v !== cli.source.version) fail(`printed "${v}", not the cli's version ${cli.source.version}`);
  ok(v);
}

if (keep) console.log(`pack-check: kept ${work}`);
else rmSync(work, { recursive: true, force: true });
console.log(`pack-check: ${manifests.length} packages pack, install and work on their own`);
