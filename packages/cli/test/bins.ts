import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

/** True when the bins' dist is built (the e2e tests drive the real executables). */
export const built = existsSync(new URL('../dist/bin/xsmeta.js', import.meta.url));

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one of the real executables as an administrator's shell would. `stdin`: a string is
 * piped in (`echo n |`), 'null' is /dev/null (`< /dev/null`), 'closed' runs it with stdin
 * closed (`<&-`).
 */
export function bin(
  name: 'xsmeta' | 'xe-backup-metadata' | 'xe-restore-metadata',
  args: string[],
  env: Record<string, string | undefined>,
  stdin: string | 'null' | 'closed' = 'null',
): Promise<Ran> {
  const path = new URL(`../bin/${name}.js`, import.meta.url).pathname;
  const full = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete full[k];
  const child =
    stdin === 'closed'
      ? spawn('/bin/sh', ['-c', 'exec "$0" "$@" <&-', process.execPath, path, ...args], {
          env: full,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, [path, ...args], {
          env: full,
          stdio: [stdin === 'null' ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        });
  if (stdin !== 'null' && stdin !== 'closed') child.stdin!.end(stdin);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}
