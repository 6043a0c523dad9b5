import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { built } from './bins.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'xsmeta-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs the built xsmeta with a module hook that records every module it loads; returns the
 * exit code, stdout and the loaded URLs. Node's built-ins loaded by any means (an import, or
 * `require` through createRequire, which the hook does not see) are added at exit as `node:NAME`
 * from process.moduleLoadList.
 */
function loaded(
  args: string[],
  env: Record<string, string> = {},
): { code: number | null; stdout: string; stderr: string; urls: string[]; sources: string[] } {
  const log = join(dir, `loaded-${args.join('-').replace(/[^\w-]/g, '_')}.txt`);
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { appendFileSync } from 'node:fs';
import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(hooks).href)});
process.on('exit', () => {
  const builtins = process.moduleLoadList.filter((m) => /^NativeModule [a-z]/.test(m));
  appendFileSync(${JSON.stringify(log)}, builtins.map((m) => 'node:' + m.slice(13) + '\\n').join(''));
});
`,
  );
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', register, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, XSMETA_URL: '', ...env },
  });
  const urls = readFileSync(log, 'utf8').split('\n');
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, urls, sources: sourcesOf(urls) };
}

/**
 * What the loaded files were built from. The bins are a bundle (dist/bin/*.js and the chunks
 * under dist/chunks/, see bundle.mjs), so a loaded file's name no longer says which package's
 * code it holds: its source map does. Each loaded file of the bundle is replaced by the absolute
 * paths of its map's `sources`; any other URL (an external package, a built-in) is kept as is.
 */
function sourcesOf(urls: string[]): string[] {
  return urls.flatMap((u) => {
    if (!/[/\\]packages[/\\]cli[/\\]dist[/\\].*\.js$/.test(u)) return [u];
    const file = fileURLToPath(u);
    expect(existsSync(`${file}.map`), `${file} has its source map`).toBe(true);
    const map = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[] };
    return map.sources.map((s) => resolve(dirname(file), s));
  });
}

const HEAVY =
  /classic-level|msgpackr|[/\\]ink[/\\]|react|@xsmeta[/\\]|packages[/\\](core|xapi|vdi-store|tui)[/\\]/;
/** The one module of ours --help needs: core's pure text escaping (every printed line). */
const ALLOWED = /packages[/\\]core[/\\](dist|src)[/\\]domain[/\\]text\.(js|ts)$/;

it.skipIf(!built)(
  '--help and a command help load none of the pool, ring, event-store or console modules (needs dist)',
  () => {
    for (const args of [['--help'], ['list', '--help'], ['backup', '--help']]) {
      const r = loaded(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/usage: xsmeta/i);
      expect(r.urls.some((u) => u.endsWith('/dist/bin/xsmeta.js'))).toBe(true);
      // the bundle's sources, and anything loaded from outside it
      expect(
        r.sources.some((u) => /packages[/\\]cli[/\\]src[/\\]bin[/\\]xsmeta\.ts$/.test(u)),
      ).toBe(true);
      expect(r.sources.filter((u) => HEAVY.test(u) && !ALLOWED.test(u))).toEqual([]);
    }
    // the help kept in its command's module is still found
    const keys = loaded(['keys', '--help']);
    expect(keys.code).toBe(0);
    expect(keys.stdout).toContain('keys');
  },
);

it.skipIf(!built)(
  '`list` loads no event-store code (classic-level, msgpackr) before it reaches the log (needs dist)',
  () => {
    // A pool that refuses the connection: list loads its modules, fails at once, and never
    // reaches the event log, so the LevelDB code must not have been loaded (issue 19's start-up).
    for (const args of [
      ['list', '--url', 'http://127.0.0.1:9'],
      ['list', '--url', 'http://127.0.0.1:9', '--json'],
    ]) {
      const r = loaded(args, {
        XSMETA_PASSWORD: 'x',
        XSMETA_STATE_DIR: join(dir, 'state'),
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ECONNREFUSED|XAPI_TRANSPORT/);
      // it did load the command's own modules (the hook sees them) ...
      expect(r.sources.some((u) => /packages[/\\]xapi[/\\]src[/\\]/.test(u))).toBe(true);
      // ... but none of the event store's: neither its code in the bundle nor the packages the
      // bundle leaves external (classic-level, msgpackr), which would show as their own URLs
      expect(r.sources.filter((u) => /classic-level|msgpackr|eventstore-level/.test(u))).toEqual(
        [],
      );
    }
  },
);

it.skipIf(!built)(
  '`list` loads core only through its catalogue entry, and TLS only for an https URL (needs dist)',
  () => {
    const env = { XSMETA_PASSWORD: 'x', XSMETA_STATE_DIR: join(dir, 'state') };
    const plain = loaded(['list', '--url', 'http://127.0.0.1:9'], env);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/ECONNREFUSED|XAPI_TRANSPORT/);
    // core's catalogue entry is a chunk of its own (named after it; it holds only re-exports)
    expect(plain.urls.some((u) => /[/\\]dist[/\\]chunks[/\\]catalogue-\w+\.js$/.test(u))).toBe(
      true,
    );
    const core = plain.sources.filter((u) => /packages[/\\]core[/\\]src[/\\]/.test(u));
    expect(core.some((u) => /core[/\\]src[/\\]app[/\\]catalogue\.ts$/.test(u))).toBe(true);
    // core's index (and what only it re-exports: the deciders' projections, restore, convert)
    expect(
      core.filter((u) => /[/\\](index|projections|restore|convert)\.(js|ts)$/.test(u)),
    ).toEqual([]);
    // an http URL never loads node:https or node:tls (the built-ins list is exhaustive) ...
    expect(plain.urls).toContain('node:http');
    expect(plain.urls.filter((u) => u === 'node:https' || u === 'node:tls')).toEqual([]);
    // ... an https one does, before it is refused
    const secure = loaded(['list', '--url', 'https://127.0.0.1:9'], env);
    expect(secure.code).toBe(1);
    expect(secure.urls).toContain('node:https');
    expect(secure.urls).toContain('node:tls');
  },
);
