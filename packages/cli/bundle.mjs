// `pnpm build` of the cli: bundles the three commands with esbuild into dist/bin/<name>.js,
// with what they import lazily (`await import(...)`: the event store, the pool's services, the
// console, offsite...) split into shared chunks under dist/chunks/, each loaded only when a
// command reaches it. Why a bundle, and what it costs: README.md, "Build".
//
// - Our packages are bundled from their TypeScript sources (the `source` export condition), so
//   the source maps (dist/**/*.js.map, with the sources inlined) point at the .ts lines. Node
//   reads them only when asked (`node --enable-source-maps`), so they cost nothing at start-up.
// - External, loaded from node_modules at run time: packages with a native addon or an optional
//   native part (classic-level, msgpackr with msgpackr-extract), which are therefore this
//   package's own dependencies, and ink's development-only devtools hook (never installed).
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const BINS = ['xsmeta', 'xe-backup-metadata', 'xe-restore-metadata'];

rmSync(`${here}/dist`, { recursive: true, force: true });
await build({
  absWorkingDir: here,
  entryPoints: {
    ...Object.fromEntries(BINS.map((b) => [`bin/${b}`, `src/bin/${b}.ts`])),
    // not a command: bench/remote.bench.mjs drives the remote device on its own
    'remote/device': 'src/remote/device.ts',
  },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  conditions: ['source'],
  external: ['classic-level', 'msgpackr', 'msgpackr-extract', 'react-devtools-core', '*.node'],
  // CommonJS dependencies bundled into ES modules (commander, react...) call `require` for
  // Node's built-ins; an ES module has none, so each output file gets one.
  banner: {
    js: "import { createRequire as __xsmetaCreateRequire } from 'node:module';\nconst require = __xsmetaCreateRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  legalComments: 'eof',
  logLevel: 'warning',
});
