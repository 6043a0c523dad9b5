import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { built } from './bins.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'xsmeta-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Runs the built xsmeta with a module hook that records every module it loads; returns the
 * exit code, stdout and the loaded URLs.
 */
function loaded(
  args: string[],
  env: Record<string, string> = {},
): { code: number | null; stdout: string; stderr: string; urls: string[] } {
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
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  writeFileSync(log, '');
  const r = spawnSync(process.execPath, ['--import', register, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, XSMETA_URL: '', ...env },
  });
  return {
    code: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    urls: readFileSync(log, 'utf8').split('\n'),
  };
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
      expect(r.urls.filter((u) => HEAVY.test(u) && !ALLOWED.test(u))).toEqual([]);
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
      expect(r.urls.some((u) => /packages[/\\]xapi[/\\]/.test(u))).toBe(true);
      // ... but none of the event store's
      expect(r.urls.filter((u) => /classic-level|msgpackr|eventstore-level/.test(u))).toEqual([]);
    }
  },
);
