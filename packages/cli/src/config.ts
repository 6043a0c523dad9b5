import { accessSync, constants, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { stdio } from './output.js';

/**
 * Connection and storage settings: a flag wins over the environment, which
 * wins over the default. The password never travels in argv; it comes from a file, the
 * environment, or a prompt on a terminal.
 */
export interface Settings {
  url: string | null;
  username: string;
  password: string | null;
  /** Where the password came from, when it was a file (a scheduled job reads it from there). */
  passwordFile?: string;
  inventory: string;
  devDir: string;
  stateDir: string;
  /** xapi's local Unix socket, used when no URL is given and it exists. */
  socket: string;
}

export interface SettingFlags {
  url?: string | undefined;
  username?: string | undefined;
  passwordFile?: string | undefined;
  inventory?: string | undefined;
  devDir?: string | undefined;
  stateDir?: string | undefined;
  socket?: string | undefined;
}

/**
 * Where xapi listens for local clients on a pool host (xe uses it; xapi trusts a root login
 * there: ocaml/xapi/xapi_session.ml, login_with_password).
 */
export const DEFAULT_SOCKET = '/var/lib/xcp/xapi';

export class UsageError extends Error {
  readonly code = 'USAGE';
}

export class ConfigError extends Error {
  constructor(
    readonly code:
      | 'NO_URL'
      | 'NO_PASSWORD'
      | 'BAD_PASSWORD_FILE'
      | 'NO_CONTROL_DOMAIN'
      | 'BAD_STATE_DIR'
      | 'BAD_TIMEOUT',
    message: string,
  ) {
    super(message);
  }
}

/**
 * The password, from a file only its owner may read. One that group or others may access is
 * used, with a warning on stderr each time that says how to fix it (as ssh does for a key it
 * still uses): refusing it would silently stop the scheduled backups of a pool upgraded from a
 * setup that wrote it with the default umask.
 */
function readPasswordFile(path: string): string {
  try {
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077)
      stdio.err(
        `warning: the password file ${path} may be read by group or others (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${path}`,
      );
    return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new ConfigError(
      'BAD_PASSWORD_FILE',
      `cannot read the password file ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

function defaultStateDir(env: NodeJS.ProcessEnv): string {
  try {
    mkdirSync('/var/lib/xsmeta', { recursive: true });
    accessSync('/var/lib/xsmeta', constants.W_OK);
    return '/var/lib/xsmeta';
  } catch {
    return join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'xsmeta');
  }
}

/**
 * The state folder must be a writable folder (created when missing), checked before a command
 * changes anything: found only after a restore, the error would leave the run unrecorded.
 */
export function checkStateDir(path: string): string {
  try {
    mkdirSync(path, { recursive: true });
    if (!statSync(path).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
    accessSync(path, constants.W_OK);
    return path;
  } catch (e) {
    throw new ConfigError(
      'BAD_STATE_DIR',
      `the state folder ${path} is not a writable folder (${(e as NodeJS.ErrnoException).code ?? 'error'}): set --state-dir or XSMETA_STATE_DIR to one`,
    );
  }
}

export function resolveSettings(
  flags: SettingFlags,
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const passwordFile = flags.passwordFile ?? env.XSMETA_PASSWORD_FILE;
  return {
    url: flags.url ?? env.XSMETA_URL ?? null,
    username: flags.username ?? env.XSMETA_USERNAME ?? 'root',
    password: passwordFile ? readPasswordFile(passwordFile) : (env.XSMETA_PASSWORD ?? null),
    ...(passwordFile ? { passwordFile: resolve(passwordFile) } : {}),
    inventory: flags.inventory ?? env.XSMETA_INVENTORY ?? '/etc/xensource-inventory',
    devDir: flags.devDir ?? env.XSMETA_DEV_DIR ?? '/dev',
    stateDir: checkStateDir(flags.stateDir ?? env.XSMETA_STATE_DIR ?? defaultStateDir(env)),
    socket: flags.socket || env.XSMETA_SOCKET || DEFAULT_SOCKET,
  };
}

/**
 * The local socket to connect over: only when no URL is set and the socket exists (a pool
 * host, where xsconsole and cron run the commands with no environment at all).
 */
export function localSocket(s: Settings): string | null {
  if (s.url) return null;
  try {
    return statSync(s.socket).isSocket() ? s.socket : null;
  } catch {
    return null;
  }
}

/** KEY='value' lines of /etc/xensource-inventory. */
export function readInventory(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(
      'NO_CONTROL_DOMAIN',
      `cannot read the inventory ${path}: set --inventory or XSMETA_INVENTORY`,
    );
  }
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*'?([^']*)'?\s*$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The connection flags of a parsed command line (commander's camelCase option names). */
export function connectionFlags(v: Record<string, unknown>): SettingFlags {
  const s = (k: keyof SettingFlags) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);
  return {
    url: s('url'),
    username: s('username'),
    passwordFile: s('passwordFile'),
    inventory: s('inventory'),
    devDir: s('devDir'),
    stateDir: s('stateDir'),
    socket: s('socket'),
  };
}
