#!/usr/bin/env node
// Proves that the rules of scripts/pack-check.mjs (scripts/pack-rules.mjs) refuse what must not
// be published: a leaked `source` condition, a workspace range, a file named but not packed, a
// test file, a private package, a stale build output, a README without its runnable example.
// Runs in `pnpm lint`.
import { bundleChunkRefs, manifestProblems, readmeExamples, staleOutputs } from './pack-rules.mjs';

let cases = 0;
let failures = 0;
function expect(name, ok, detail) {
  cases++;
  if (!ok) {
    failures++;
    console.log(`pack-check-selftest: FAIL ${name}: ${detail}`);
  }
}

const good = {
  name: '@xsmeta/a',
  version: '1.2.3',
  engines: { node: '>=20.19' },
  exports: {
    '.': { types: './dist/index.d.ts', default: './dist/index.js' },
    './package.json': './package.json',
  },
  dependencies: { '@xsmeta/b': '1.2.3', commander: '^14.0.0' },
};
const goodFiles = ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts'];
const ours = new Set(['@xsmeta/a', '@xsmeta/b']);
const problems = (pkg, files = goodFiles) =>
  manifestProblems({ pkg, files, version: '1.2.3', ours });
/** The case finds a problem that mentions `needle`. */
const bites = (name, pkg, needle, files) => {
  const p = problems(pkg, files);
  expect(
    name,
    p.some((l) => l.includes(needle)),
    `problems: ${JSON.stringify(p)}`,
  );
};

expect(
  'a good package has no problem',
  problems(good).length === 0,
  JSON.stringify(problems(good)),
);
bites(
  'a source condition left in exports',
  { ...good, exports: { '.': { source: './src/index.ts', ...good.exports['.'] } } },
  '"source"',
);
bites(
  'a nested source condition',
  { ...good, exports: { '.': { node: { source: './src/index.ts', default: './dist/index.js' } } } },
  '"source"',
);
bites(
  'a workspace range',
  { ...good, dependencies: { '@xsmeta/b': 'workspace:*' } },
  'workspace:*',
);
bites('a catalog range', { ...good, dependencies: { vitest: 'catalog:' } }, 'catalog:');
bites(
  'a dependency on one of ours that is not packed',
  { ...good, dependencies: { '@xsmeta/tui': '1.2.3' } },
  '@xsmeta/tui',
);
bites('a private package', { ...good, private: true }, 'private');
bites('another version', { ...good, version: '1.2.4' }, 'version 1.2.4');
bites('no engines', { ...good, engines: undefined }, 'engines.node');
bites(
  'a bin that is not packed',
  { ...good, bin: { xsmeta: './bin/xsmeta.js' } },
  './bin/xsmeta.js',
);
bites(
  'types that are not packed',
  good,
  './dist/index.d.ts',
  goodFiles.filter((f) => f !== 'dist/index.d.ts'),
);
bites(
  'no LICENSE',
  good,
  'LICENSE',
  goodFiles.filter((f) => f !== 'LICENSE'),
);
bites('a source file packed', good, 'src/index.ts', [...goodFiles, 'src/index.ts']);
bites('a test file packed', good, 'dist/a.test.js', [...goodFiles, 'dist/a.test.js']);
bites('nothing to use', { ...good, exports: undefined }, 'nothing to use');

const stale = staleOutputs(
  [
    'index.js',
    'index.d.ts',
    'index.js.map',
    'index.d.ts.map',
    'runtime.js',
    'runtime.d.ts',
    'run.js',
  ],
  ['index.ts', 'run.tsx', 'index.test.ts'],
);
expect(
  'the output of a removed source is stale, the rest is not',
  JSON.stringify(stale) === JSON.stringify(['runtime.js', 'runtime.d.ts']),
  JSON.stringify(stale),
);

// A bundle (the cli): entries under bin/ have their source; chunks have none and are kept while
// a file imports them (statically, dynamically or through another chunk), stale once nothing does.
const refs = bundleChunkRefs([
  {
    path: 'bin/xsmeta.js',
    text: 'import { a } from "../chunks/chunk-AAAA1111.js";\nconst c = () => import("../chunks/console-BBBB2222.js");',
  },
  { path: 'chunks/console-BBBB2222.js', text: "export * from './chunk-CCCC3333.js';" },
]);
expect(
  "a bundle's chunk references are found (static, dynamic, chunk to chunk)",
  JSON.stringify([...refs].sort()) ===
    JSON.stringify([
      'chunks/chunk-AAAA1111.js',
      'chunks/chunk-CCCC3333.js',
      'chunks/console-BBBB2222.js',
    ]),
  JSON.stringify([...refs]),
);
const staleChunks = staleOutputs(
  [
    'bin/xsmeta.js',
    'bin/xsmeta.js.map',
    'chunks/chunk-AAAA1111.js',
    'chunks/chunk-AAAA1111.js.map',
    'chunks/console-BBBB2222.js',
    'chunks/chunk-CCCC3333.js',
    'chunks/chunk-OLD00000.js',
    'chunks/chunk-OLD00000.js.map',
    'bin/xe-gone.js',
  ],
  ['bin/xsmeta.ts'],
  refs,
);
expect(
  'a bundle chunk nothing imports is stale, and so is an entry whose source is gone',
  JSON.stringify(staleChunks) ===
    JSON.stringify(['chunks/chunk-OLD00000.js', 'chunks/chunk-OLD00000.js.map', 'bin/xe-gone.js']),
  JSON.stringify(staleChunks),
);

const readme = [
  '# @xsmeta/a',
  '',
  '## Use it on its own',
  '',
  '```sh',
  'npm install @xsmeta/a @xsmeta/b',
  '```',
  '',
  '```js',
  "console.log('hi');",
  '```',
  '',
  '```text',
  'hi',
  '```',
  '',
  '```sh',
  '# a comment',
  'npx a --version',
  '```',
  '',
  '## API',
  '',
  '```js',
  'not an example',
  '```',
  '',
].join('\n');
const found = readmeExamples(readme, '@xsmeta/a');
expect(
  'a README section gives its js example, its output and its sh lines, and stops at the next section',
  JSON.stringify(found) ===
    JSON.stringify({
      examples: [
        { lang: 'js', code: "console.log('hi');\n", expect: 'hi' },
        { lang: 'sh', lines: ['npx a --version'], expect: null },
      ],
    }),
  JSON.stringify(found),
);
expect(
  'a README without the section',
  readmeExamples('# @xsmeta/a\n\n## API\n', '@xsmeta/a').problem?.includes('no "## Use it'),
  JSON.stringify(readmeExamples('# @xsmeta/a\n', '@xsmeta/a')),
);
expect(
  'a README whose section installs another package',
  readmeExamples(readme, '@xsmeta/ab').problem?.includes('npm install @xsmeta/ab'),
  JSON.stringify(readmeExamples(readme, '@xsmeta/ab')),
);

console.log(`pack-check-selftest: ${cases - failures} of ${cases} cases ok`);
if (failures) process.exit(1);
