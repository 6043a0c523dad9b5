import { readFileSync } from 'node:fs';
import { type Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { connectionFlags, resolveSettings, type Settings, UsageError } from '../config.js';
import { errorLine, exitCodeOf, type Io } from '../output.js';

/** The package's version, printed by `--version` on every command. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** How many runs `xsmeta history` shows without --all (the newest that match). */
export const HISTORY_PAGE = 50;

/** What a command's action gets: where to print, and how to set the exit status. */
export interface Ctx {
  io: Io;
  exit(code: number): void;
}

/** One command: its flags, arguments, help and action, declared in one place. */
export type Declare = (ctx: Ctx) => Command;

/**
 * A parser for a single-valued option: given twice, it is a usage error (commander would keep
 * the last value silently). No option using it has a commander default, so `previous` is
 * defined only when the option was given before.
 */
export function once<T>(name: string, parse: (v: string) => T) {
  return (value: string, previous: T | undefined): T => {
    if (previous !== undefined) throw new InvalidArgumentError(`${name} is given twice`);
    return parse(value);
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An SR or VDI uuid: empty or malformed is a usage error (an unknown one is SR_NOT_FOUND). */
export function uuid(what: string) {
  return (v: string): string => {
    if (v.trim() === '') throw new InvalidArgumentError(`${what} is empty: give a uuid`);
    if (!UUID.test(v)) throw new InvalidArgumentError(`${what} '${v}' is not a uuid`);
    return v.toLowerCase();
  };
}

/** How many backups to keep: 1..100, as the ring holds at most 100. */
export function keep(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < 1 || n > 100)
    throw new InvalidArgumentError(`the number of backups to keep must be 1..100, not ${v}`);
  return n;
}

/** A backup's date as the listings print it. */
export function date(v: string): string {
  if (!/^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/.test(v))
    throw new InvalidArgumentError(`the date must be YYYY-MM-DD-HH-MM-SS, not '${v}'`);
  return v;
}

/** One of a few words (the words are kept on the parser for shell completion). */
export function oneOf<T extends string>(words: readonly T[]) {
  const parse = (v: string): T => {
    if (!(words as readonly string[]).includes(v))
      throw new InvalidArgumentError(`use one of ${words.join(', ')}, not '${v}'`);
    return v as T;
  };
  return Object.assign(parse, { words });
}

/** The environment every command reads, listed in each help. */
export const ENVIRONMENT = `Environment (a flag wins over it):
  XSMETA_URL              pool master, e.g. https://pool-master
  XSMETA_USERNAME         user (default root)
  XSMETA_PASSWORD_FILE    a file holding the password (or XSMETA_PASSWORD; prompts on a terminal)
  XSMETA_INVENTORY        /etc/xensource-inventory
  XSMETA_DEV_DIR          where plugged disks appear (default /dev)
  XSMETA_STATE_DIR        the event log (default /var/lib/xsmeta, else $XDG_STATE_HOME/xsmeta)
  XSMETA_SOCKET           xapi's local socket (default /var/lib/xcp/xapi): with no URL set and
                          the socket present (a pool host), commands connect there as local
                          root with no password, as xe does
  XSMETA_LOCK_WAIT_SECONDS  how long --wait waits for another backup of the SR (default 1800)
  XSMETA_SIGNING_KEY      sign every backup with this Ed25519 key ('xsmeta keys init')
  XSMETA_VERIFY_KEY       verify and restore refuse backups not signed by this key
  XSMETA_TLS_FINGERPRINT  trust the pool's certificate by its sha256 fingerprint (self-signed)
  XSMETA_TLS_INSECURE     1: do not verify the certificate at all (tests only)
  XSMETA_TIMEOUT_MS       deadline of the connection and of each call (default 60000)
  XSMETA_CRON_DIR         where 'xsmeta schedule' installs its cron entry (default /etc/cron.d)`;

/** The connection flags xsmeta's commands share (the compatibility commands use the environment). */
export function withConnection(cmd: Command): Command {
  return cmd
    .addOption(new Option('--url <URL>', 'pool master URL').argParser(once('--url', String)))
    .addOption(new Option('--username <USER>', 'user').argParser(once('--username', String)))
    .addOption(
      new Option('--password-file <FILE>', 'a file holding the password').argParser(
        once('--password-file', String),
      ),
    )
    .addOption(
      new Option('--inventory <FILE>', 'the host inventory').argParser(once('--inventory', String)),
    )
    .addOption(
      new Option('--dev-dir <DIR>', 'where plugged disks appear').argParser(
        once('--dev-dir', String),
      ),
    )
    .addOption(
      new Option('--state-dir <DIR>', 'the event log folder').argParser(
        once('--state-dir', String),
      ),
    )
    .addOption(
      new Option('--socket <PATH>', "xapi's local socket (used when no URL is set)").argParser(
        once('--socket', String),
      ),
    );
}

/** The settings of a command: its flags over the environment over the defaults. */
export function settingsOf(opts: Record<string, unknown>): Settings {
  return resolveSettings(connectionFlags(opts));
}

/** Help, version and usage-error behaviour shared by every command and sub-command. */
export function conventions(cmd: Command, ctx: Ctx, prog: string): Command {
  cmd
    .exitOverride()
    .version(VERSION, '--version', 'print the version')
    .helpOption('-h, --help', 'print this help')
    .configureOutput({
      writeOut: (s) => ctx.io.out(s.replace(/\n$/, '')),
      writeErr: (s) => ctx.io.err(s.replace(/\n$/, '')),
      outputError: (s, write) =>
        write(`${prog}: ${s.replace(/^error: /, '').trim()} (see '${prog} --help')\n`),
    });
  for (const sub of cmd.commands) conventions(sub, ctx, `${prog} ${sub.name()}`);
  return cmd;
}

/**
 * Runs a declared program on argv and returns the exit status: 0 for help and version, 2 for a
 * usage error (commander's, or a UsageError from an action, before anything is done), else the
 * action's status or the error's (one line on stderr).
 */
export async function run(
  prog: string,
  declare: (ctx: Ctx) => Command,
  argv: string[],
  io: Io,
): Promise<number> {
  let code = 0;
  const ctx: Ctx = {
    io,
    exit: (c) => {
      code = c;
    },
  };
  const program = conventions(declare(ctx), ctx, prog);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      // `help <command>` exits 0; help shown because the command is missing, and every other
      // commander error, is a usage error.
      return e.code === 'commander.help' && e.exitCode === 0 ? 0 : 2;
    }
    if (e instanceof UsageError) {
      io.err(`${prog}: ${e.message} (see '${prog} --help')`);
      return 2;
    }
    io.err(errorLine(prog, e));
    return exitCodeOf(e);
  }
}
