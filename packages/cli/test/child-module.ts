import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const cli = fileURLToPath(new URL('..', import.meta.url));
const built = new Map<string, Promise<string>>();

/**
 * Some tests run a module of the CLI in a plain node child (a signal, a lock held by another
 * process). The bins are a bundle with no file per module (bundle.mjs), so this builds the
 * re-exports `contents` (paths relative to the package) from their sources with esbuild, our
 * packages included (nothing needs building), once per name, into the package's
 * node_modules/.cache, where classic-level and msgpackr resolve; returns the module's file URL.
 */
export function childModule(name: string, contents: string): Promise<string> {
  let p = built.get(name);
  if (!p) {
    const outfile = join(cli, 'node_modules', '.cache', 'xsmeta-test', `${name}.mjs`);
    p = build({
      stdin: { contents, resolveDir: cli, sourcefile: `${name}.ts`, loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'node',
      conditions: ['source'],
      // as bundle.mjs: the native ones stay in node_modules (this package's own dependencies)
      external: ['classic-level', 'msgpackr'],
      outfile,
      logLevel: 'error',
    }).then(() => pathToFileURL(outfile).href);
    built.set(name, p);
  }
  return p;
}
