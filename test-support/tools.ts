/**
 * Shared by the packages' tests: the programs some tests run besides Node, and what to install
 * when one is missing. A test that needs one fails with that message, never with a bare
 * `spawn ENOENT`; `.ci/run` installs them (apt-get) when missing.
 */
import { spawnSync } from 'node:child_process';

const PACKAGE = {
  python3: 'python3',
  mke2fs: 'e2fsprogs',
  debugfs: 'e2fsprogs',
  e2fsck: 'e2fsprogs',
  tmux: 'tmux',
} as const;

export type Tool = keyof typeof PACKAGE;

/** Whether `tool` runs from this process's PATH. */
export function hasTool(tool: Tool): boolean {
  const r = spawnSync(tool, tool === 'python3' ? ['--version'] : ['-V'], { stdio: 'ignore' });
  return r.error === undefined;
}

/** Throws a one-line error naming the package to install for each missing tool. */
export function requireTools(...tools: Tool[]): void {
  const missing = tools.filter((t) => !hasTool(t));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((t) => PACKAGE[t]))];
  throw new Error(
    `${missing.join(', ')} not found on PATH: this test needs ${missing.length > 1 ? 'them' : 'it'}; install ${pkgs.join(' ')} (e.g. apt-get install -y ${pkgs.join(' ')}), as .ci/run does`,
  );
}
