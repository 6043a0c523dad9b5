import { cpSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';

/**
 * Copies a package and the packages it needs at run time into one self-contained folder, as
 * `npm install --omit=dev` would lay them out, from the workspace's own node_modules (so the
 * versions are exactly the lockfile's, and nothing is downloaded):
 *
 * - the package itself at the top (`bin/`, `dist/`, `package.json`), its dependencies under
 *   `node_modules/`, flat where names do not clash, nested under their dependent where they do;
 * - `dependencies` and the `optionalDependencies` that are installed, never dev or peer
 *   dependencies (a peer must be provided by a dependent, which the check below proves);
 * - from a workspace package, its package.json, README and the `files` it publishes; from a
 *   registry package, everything but what no run needs (type declarations, source maps,
 *   TypeScript sources, changelogs, native sources, addons built for other platforms).
 *
 * Every placed package's dependencies are then resolved again inside the copy, as Node.js will
 * resolve them, and must land on the same version as in the workspace.
 */
export interface Staged {
  /** Package names with their versions, in placement order (the top package first). */
  packages: { name: string; version: string; path: string }[];
}

interface Manifest {
  name: string;
  version: string;
  files?: string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const readManifest = (dir: string): Manifest =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest;

/** Node.js's lookup: `node_modules/<name>` in `from` and each folder above it. */
function lookup(from: string, name: string, stopAt?: string): string | null {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir || dir === stopAt) return null;
    dir = parent;
  }
}

/** The platform the release is for: addons for any other are left out. */
const PLATFORM_DIR = 'linux-x64';

/** Files and folders no run needs, in any package. */
function unneeded(path: string, isDir: boolean): boolean {
  const name = basename(path);
  if (isDir) {
    if (name === 'node_modules') return true;
    // prebuildify's layout: prebuilds/<platform>-<arch>/…
    const parent = basename(dirname(path));
    return parent === 'prebuilds' && name !== PLATFORM_DIR;
  }
  if (/\.(d\.[cm]?ts|[cm]?ts|tsx|map|tsbuildinfo)$/.test(name) && !name.endsWith('.json')) {
    return true;
  }
  if (/^(CHANGELOG|HISTORY|UPGRADING)(\.md)?$/i.test(name)) return true;
  // XenServer's control domain is glibc, never musl.
  return name.endsWith('.node') && name.includes('.musl.');
}

/** Per-package extras: the native sources of classic-level (its addon is prebuilt). */
const UNNEEDED_IN: Record<string, string[]> = {
  'classic-level': ['deps', 'binding.cc', 'binding.gyp'],
};

function copyPackage(src: string, dest: string, manifest: Manifest, workspace: boolean): void {
  const extras = new Set((UNNEEDED_IN[manifest.name] ?? []).map((p) => join(src, p)));
  const filter = (from: string) => {
    if (from === src) return true;
    if (extras.has(from)) return false;
    return !unneeded(from, statSync(from).isDirectory());
  };
  mkdirSync(dest, { recursive: true });
  if (!workspace) {
    cpSync(src, dest, { recursive: true, filter, dereference: true });
    return;
  }
  // A workspace package: what it would publish (`files`, default dist), its manifest, README.
  const entries = [
    'package.json',
    'README.md',
    'LICENSE',
    ...(manifest.files ?? ['dist']).filter((f) => f !== 'src'),
  ];
  for (const entry of entries) {
    const from = join(src, entry);
    if (existsSync(from))
      cpSync(from, join(dest, entry), { recursive: true, filter, dereference: true });
  }
}

const isWorkspace = (real: string) => !real.split(sep).includes('node_modules');

export function stage(topDir: string, out: string): Staged {
  const top = realpathSync(topDir);
  /** installed path (relative to out) -> the real folder it was copied from */
  const placed = new Map<string, string>();
  const staged: Staged = { packages: [] };
  const queue: { real: string; at: string }[] = [{ real: top, at: '' }];
  placed.set('', top);
  while (queue.length > 0) {
    const { real, at } = queue.shift()!;
    const manifest = readManifest(real);
    copyPackage(real, join(out, at), manifest, isWorkspace(real));
    staged.packages.push({ name: manifest.name, version: manifest.version, path: at || '.' });
    const deps: [string, boolean][] = [
      ...Object.keys(manifest.dependencies ?? {}).map((n): [string, boolean] => [n, false]),
      ...Object.keys(manifest.optionalDependencies ?? {}).map((n): [string, boolean] => [n, true]),
    ];
    for (const [name, optional] of deps) {
      const found = lookup(real, name);
      if (!found) {
        if (optional) continue; // not installed for this platform
        throw new Error(`${manifest.name} needs ${name}, which is not installed: run pnpm install`);
      }
      const depReal = realpathSync(found);
      // Where Node.js would find it from `at` in the copy, if it is already there.
      const seen = lookupPlaced(placed, at, name);
      if (seen !== null && placed.get(seen) === depReal) continue;
      const flat = join('node_modules', name);
      const target = placed.has(flat) ? join(at, 'node_modules', name) : flat;
      if (placed.has(target)) {
        throw new Error(`cannot place ${name} for ${manifest.name}: ${target} is taken`);
      }
      placed.set(target, depReal);
      queue.push({ real: depReal, at: target });
    }
  }
  check(placed, out);
  return staged;
}

/** Like lookup, over the placement map instead of the disk. */
function lookupPlaced(placed: Map<string, string>, from: string, name: string): string | null {
  let dir = from;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (placed.has(candidate)) return candidate;
    if (dir === '' || dir === '.') return null;
    const parent = dirname(dir);
    dir = parent === '.' ? '' : parent;
  }
}

/**
 * Every placed package's dependencies resolve, inside the copy, to the version the workspace
 * resolves them to; every required peer resolves to something.
 */
function check(placed: Map<string, string>, out: string): void {
  const problems: string[] = [];
  for (const [at, real] of placed) {
    const manifest = readManifest(real);
    const here = join(out, at);
    const wanted = [
      ...Object.keys(manifest.dependencies ?? {}),
      ...Object.keys(manifest.optionalDependencies ?? {}),
    ];
    for (const name of wanted) {
      const inWorkspace = lookup(real, name);
      if (!inWorkspace) continue; // an optional one not installed here
      const inCopy = lookup(here, name, out);
      if (!inCopy) {
        problems.push(`${manifest.name} -> ${name}: missing in the release`);
        continue;
      }
      const copiedFrom = placed.get(relative(out, inCopy));
      if (copiedFrom !== realpathSync(inWorkspace)) {
        problems.push(`${manifest.name} -> ${name}: resolves to another version in the release`);
      }
    }
    for (const name of Object.keys(manifest.peerDependencies ?? {})) {
      if (manifest.peerDependenciesMeta?.[name]?.optional) continue;
      if (!lookup(here, name, out)) problems.push(`${manifest.name} -> ${name} (peer): missing`);
    }
  }
  if (problems.length > 0)
    throw new Error(`the staged release is incomplete:\n${problems.join('\n')}`);
}
