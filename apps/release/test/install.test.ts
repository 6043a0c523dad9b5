/**
 * install.sh and uninstall.sh on their own, against a stand-in release (its commands print
 * their name and arguments), in scratch roots: the cases the end-to-end test does not reach.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const scripts = fileURLToPath(new URL('../install/', import.meta.url));
const sh = { PATH: '/usr/bin:/bin' };

let work: string;
let release: string;
let n = 0;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'xsmeta-install-test-'));
  release = join(work, 'release');
  mkdirSync(join(release, 'app', 'bin'), { recursive: true });
  for (const name of ['xsmeta', 'xe-backup-metadata', 'xe-restore-metadata']) {
    writeFileSync(
      join(release, 'app', 'bin', `${name}.js`),
      `console.log(process.argv.includes('--version') ? '9.9.9' : ['${name}', ...process.argv.slice(2)].join(' '));\n`,
    );
  }
  for (const f of ['install.sh', 'uninstall.sh', 'common.sh'])
    copyFileSync(join(scripts, f), join(release, f));
  writeFileSync(join(release, 'release.json'), '{}\n');
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A new scratch root holding the given files (path -> content) and folders. */
function host(files: Record<string, string>, dirs: string[] = []): string {
  const root = join(work, `host-${++n}`);
  for (const d of dirs) mkdirSync(join(root, d), { recursive: true });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
    chmodSync(join(root, path), 0o755);
  }
  return root;
}

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const st = lstatSync(join(dir, rel));
    out[rel] = st.isDirectory() ? 'dir' : readFileSync(join(dir, rel), 'utf8');
  }
  return out;
}

function script(name: 'install.sh' | 'uninstall.sh', args: string[], dir = release) {
  const r = spawnSync('/bin/sh', [join(dir, name), ...args], { env: sh, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const install = (root: string, node = process.execPath) =>
  script('install.sh', ['--root', root, '--node', node]);
const uninstall = (root: string) =>
  script('uninstall.sh', ['--root', root], join(root, 'opt', 'xsmeta'));
const runs = (path: string, args: string[]) =>
  spawnSync(path, args, { env: sh, encoding: 'utf8' }).stdout.trim();

const UPSTREAM = '#!/bin/bash\n# upstream\n';

describe('install.sh', () => {
  it('replaces the scripts in every folder the callers look in: /usr/lib/xcp/bin first, and /opt/xensource/bin for cron', () => {
    const root = host({
      'usr/lib/xcp/bin/xe-backup-metadata': UPSTREAM,
      'usr/lib/xcp/bin/xe-restore-metadata': UPSTREAM,
      'opt/xensource/bin/xe-backup-metadata': UPSTREAM,
      'opt/xensource/bin/xe-restore-metadata': UPSTREAM,
    });
    const before = tree(root);
    expect(install(root).code).toBe(0);
    expect(install(root).code).toBe(0); // again: the originals aside stay upstream's
    for (const d of ['usr/lib/xcp/bin', 'opt/xensource/bin']) {
      expect(runs(join(root, d, 'xe-backup-metadata'), ['-n', '-u', 'SR'])).toBe(
        'xe-backup-metadata -n -u SR',
      );
      expect(runs(join(root, d, 'xe-restore-metadata'), ['-l'])).toBe('xe-restore-metadata -l');
      expect(readFileSync(join(root, d, 'xe-backup-metadata.xsmeta-orig'), 'utf8')).toBe(UPSTREAM);
    }
    expect(runs(join(root, 'usr/bin/xsmeta'), ['list'])).toBe('xsmeta list');
    expect(uninstall(root).code).toBe(0);
    expect(tree(root)).toEqual(before);
  });

  it('refuses a host with neither helper folder, changing nothing', () => {
    const root = host({}, ['etc']);
    const r = install(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/neither \/usr\/lib\/xcp\/bin nor \/opt\/xensource\/bin exists/);
    expect(tree(root)).toEqual({ etc: 'dir' });
  });

  it('refuses a Node.js older than 20.19 before changing anything', () => {
    const root = host({ 'opt/xensource/bin/xe-backup-metadata': UPSTREAM });
    const before = tree(root);
    const old = join(work, 'old-node');
    writeFileSync(old, `#!/bin/sh\nexec '${process.execPath}' -e 'process.exit(3)'\n`);
    chmodSync(old, 0o755);
    const r = install(root, old);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/needs Node\.js >= 20\.19.*nothing was changed/);
    expect(tree(root)).toEqual(before);
  });

  it('keeps the newer script an update of the host put over its launcher, and puts that one back', () => {
    const root = host({ 'opt/xensource/bin/xe-backup-metadata': UPSTREAM });
    expect(install(root).code).toBe(0);
    const newer = '#!/bin/bash\n# upstream, updated\n';
    writeFileSync(join(root, 'opt/xensource/bin/xe-backup-metadata'), newer);
    expect(install(root).code).toBe(0);
    expect(
      readFileSync(join(root, 'opt/xensource/bin/xe-backup-metadata.xsmeta-orig'), 'utf8'),
    ).toBe(newer);
    expect(uninstall(root).code).toBe(0);
    expect(readFileSync(join(root, 'opt/xensource/bin/xe-backup-metadata'), 'utf8')).toBe(newer);
  });

  it('runs the commands with the runtime the release bundles, copied to /opt/xsmeta/node', () => {
    const bundled = join(work, 'bundled');
    cpSync(release, bundled, { recursive: true });
    mkdirSync(join(bundled, 'node', 'bin'), { recursive: true });
    writeFileSync(
      join(bundled, 'node', 'bin', 'node'),
      `#!/bin/sh\nexec '${process.execPath}' "$@"\n`,
    );
    chmodSync(join(bundled, 'node', 'bin', 'node'), 0o755);
    const root = host({}, ['opt/xensource/bin']);
    const r = script('install.sh', ['--root', root], bundled);
    expect(r.code, r.stderr).toBe(0);
    const launcher = readFileSync(join(root, 'usr/bin/xsmeta'), 'utf8');
    expect(launcher).toContain(`exec '${join(root, 'opt/xsmeta/node/bin/node')}' `);
    expect(runs(join(root, 'usr/bin/xsmeta'), ['list'])).toBe('xsmeta list');
    // --node overrides it.
    expect(script('install.sh', ['--root', root, '--node', process.execPath], bundled).code).toBe(
      0,
    );
    expect(readFileSync(join(root, 'usr/bin/xsmeta'), 'utf8')).toContain(
      `exec '${process.execPath}' `,
    );
  });

  it('rejects an unknown argument as a usage error', () => {
    const r = script('install.sh', ['--prefix', '/usr']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown argument '--prefix'/);
  });
});

describe('uninstall.sh', () => {
  it("removes xsmeta schedule's cron entry and the folders install made, and nothing else", () => {
    const root = host(
      {
        'opt/xensource/bin/xe-backup-metadata': UPSTREAM,
        'etc/cron.d/other': '0 * * * * root true\n',
      },
      [],
    );
    const before = tree(root);
    expect(install(root).code).toBe(0); // makes usr/bin
    writeFileSync(
      join(root, 'etc/cron.d/xsmeta'),
      "# Installed by 'xsmeta schedule daily'; 'xsmeta schedule never' removes it.\n17 * * * * root node xsmeta schedule run\n",
    );
    const r = uninstall(root);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/event history .* is left/);
    expect(tree(root)).toEqual(before);
  });
});
