/**
 * The pool-master release, end to end: built as `pnpm release --no-node` builds it (with this
 * machine's Node.js instead of a bundled one, to keep the test fast), unpacked, installed into
 * a scratch root that holds stand-ins for upstream's scripts, run from there against the
 * simulator the way xsconsole and cron run them (plugins-base/XSFeatureDRBackup.py and
 * XSFeatureDRRestore.py of xsconsole; scripts/backup-metadata-cron of xen-api: no environment
 * but the host's own, PATH=/usr/bin:/bin), then uninstalled: the root must be byte for byte as
 * it was.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Built, buildRelease } from '../src/build.js';
import { unfitForTarget } from '../src/elf.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string>): Promise<Ran> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((done, fail) => {
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

/** Every entry under dir: its kind, mode and content (hashed), or a link's target. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    const path = join(dir, rel);
    const st = lstatSync(path);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(path)}`;
    else if (st.isDirectory()) out[rel] = `dir ${mode}`;
    else out[rel] = `file ${mode} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`;
  }
  return out;
}

/** Every file under dir whose path matches re. */
const filesMatching = (dir: string, re: RegExp) =>
  readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => re.test(f));

describe('the pool-master release', () => {
  let work: string;
  let built: Built;
  let release: string;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'xsmeta-release-test-'));
    built = buildRelease({ root, out: join(work, 'out'), node: false });
    mkdirSync(join(work, 'unpacked'));
    const untar = await run('tar', ['-xzf', built.tarball, '-C', join(work, 'unpacked')], {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
    });
    expect(untar.code, untar.stderr).toBe(0);
    release = join(work, 'unpacked', built.name);
  }, 120_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('holds the CLI with what it needs on a linux-x64 host with glibc 2.28, and nothing else', () => {
    expect(built.name).toBe(`xsmeta-${built.version}-linux-x64`);
    const manifest = JSON.parse(readFileSync(join(release, 'release.json'), 'utf8'));
    expect(manifest.node).toEqual({ bundled: false, required: '>=20.19' });
    expect(existsSync(join(release, 'node'))).toBe(false);
    for (const script of ['install.sh', 'uninstall.sh', 'common.sh']) {
      expect(lstatSync(join(release, script)).mode & 0o111).toBe(0o111);
    }
    const app = join(release, 'app');
    const addons = filesMatching(app, /\.node$/);
    // LevelDB's addon, from classic-level's linux-x64 glibc prebuild (musl's and every other
    // platform's left out), loads on the target.
    expect(addons).toContain('node_modules/classic-level/prebuilds/linux-x64/classic-level.node');
    expect(addons.filter((f) => f.includes('musl'))).toEqual([]);
    for (const f of addons) expect(unfitForTarget(join(app, f))).toBeNull();
    expect(readdirSync(join(app, 'node_modules', 'classic-level', 'prebuilds'))).toEqual([
      'linux-x64',
    ]);
    // Only what runs: no dev tooling, no simulator, no sources or maps.
    const top = readdirSync(join(app, 'node_modules'));
    for (const dev of ['vitest', 'typescript', '@types', 'turbo', '@biomejs', 'vite']) {
      expect(top).not.toContain(dev);
    }
    expect(readdirSync(join(app, 'node_modules', '@xsmeta')).sort()).toEqual([
      'core',
      'eventstore-level',
      'legacy-compat',
      'tui',
      'vdi-store',
      'xapi',
    ]);
    expect(filesMatching(app, /\.(ts|tsx|map)$/)).toEqual([]);
  });

  it('installs into a root, runs there as xsconsole and cron do, and uninstalls to the root it found', async () => {
    const host = join(work, 'host');
    const helpers = join(host, 'opt', 'xensource', 'bin');
    mkdirSync(helpers, { recursive: true });
    mkdirSync(join(host, 'usr', 'bin'), { recursive: true });
    const upstream = {
      'xe-backup-metadata': '#!/bin/bash\n# upstream xe-backup-metadata\nexit 42\n',
      'xe-restore-metadata': '#!/bin/bash\n# upstream xe-restore-metadata\nexit 43\n',
    };
    for (const [name, text] of Object.entries(upstream)) {
      writeFileSync(join(helpers, name), text);
      chmodSync(join(helpers, name), 0o755);
    }
    const before = snapshot(host);
    const sh = { PATH: '/usr/bin:/bin' };
    const install = () =>
      run('/bin/sh', [join(release, 'install.sh'), '--root', host, '--node', process.execPath], sh);

    const first = await install();
    expect(first.code, first.stderr).toBe(0);
    // Installed twice (an upgrade): the originals aside are still upstream's, not our launchers.
    const second = await install();
    expect(second.code, second.stderr).toBe(0);
    for (const [name, text] of Object.entries(upstream)) {
      expect(readFileSync(join(helpers, `${name}.xsmeta-orig`), 'utf8')).toBe(text);
      expect(readFileSync(join(helpers, name), 'utf8')).toContain('xsmeta-launcher');
    }
    expect(readFileSync(join(host, 'opt', 'xsmeta', 'installed-files'), 'utf8')).toBe(
      [
        'moved /opt/xensource/bin/xe-backup-metadata',
        'moved /opt/xensource/bin/xe-restore-metadata',
        'created /usr/bin/xsmeta',
        '',
      ].join('\n'),
    );

    const dir = join(work, 'pool');
    const sim = await startSimulator({
      stateDir: join(dir, 'sim'),
      vms: 3,
      srs: 2,
      seed: 22,
      socket: join(dir, 'xapi'),
    });
    try {
      const xapi = await XapiClient.connect({
        url: sim.url,
        username: 'root',
        password: sim.env.XSMETA_PASSWORD!,
      });
      const [pool] = (await xapi.getAllRecords<{ default_SR: string }>('pool')).values();
      const sr = await xapi.call<string>('SR.get_uuid', pool!.default_SR);
      await xapi.logout();
      const vdi = backupVdiUuid(sr);
      // What a pool host has, and no more: no URL, no password, cron's PATH.
      const env = {
        ...sh,
        XSMETA_SOCKET: sim.socketPath!,
        XSMETA_INVENTORY: sim.env.XSMETA_INVENTORY!,
        XSMETA_DEV_DIR: sim.env.XSMETA_DEV_DIR!,
        XSMETA_STATE_DIR: join(dir, 'state'),
      };
      const backup = (args: string[]) => run(join(helpers, 'xe-backup-metadata'), args, env);
      const restore = (args: string[]) => run(join(helpers, 'xe-restore-metadata'), args, env);

      // XSFeatureDRBackup.py: -n (3: no backup VDI yet), then -c -u SR.
      expect((await backup(['-n', '-u', sr])).code).toBe(3);
      const made = await backup(['-c', '-u', sr]);
      expect(made.code, made.stderr).toBe(0);
      // backup-metadata-cron: `xe-backup-metadata -c`, to the pool's default SR.
      const cron = await backup(['-c']);
      expect(cron.code, cron.stderr).toBe(0);
      // XSFeatureDRRestore.py: -p -u SR, -l -u SR -x VDI, then the restore (a dry run here).
      const probed = await restore(['-p', '-u', sr]);
      expect(probed.stdout.trim()).toBe(vdi);
      const listed = await restore(['-l', '-u', sr, '-x', vdi]);
      const dates = listed.stdout.trim().split('\n');
      expect(dates).toHaveLength(2);
      const dry = await restore(['-y', '-u', sr, '-x', vdi, '-d', dates[0]!, '-m', 'all', '-n']);
      const last = dry.stdout.trim().split('\n').at(-1) ?? '';
      expect(last).toMatch(/^Restored \d+ VM\(s\), and \d+ error\(s\)$/);
      expect(dry.code).toBe(Number(/and (\d+) error/.exec(last)?.[1]));
      // xsmeta, from /usr/bin.
      const list = await run(
        join(host, 'usr', 'bin', 'xsmeta'),
        ['list', '--sr', sr, '--json'],
        env,
      );
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout)).toHaveLength(2);
    } finally {
      await sim.close();
    }

    const uninstall = await run(
      '/bin/sh',
      [join(host, 'opt', 'xsmeta', 'uninstall.sh'), '--root', host],
      sh,
    );
    expect(uninstall.code, uninstall.stderr).toBe(0);
    expect(snapshot(host)).toEqual(before);
    // Nothing left to uninstall: a clear refusal.
    const again = await run('/bin/sh', [join(release, 'uninstall.sh'), '--root', host], sh);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not installed/);
  }, 120_000);
});
