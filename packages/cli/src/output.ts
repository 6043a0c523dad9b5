import { escapeText } from '@xsmeta/core/text';

/**
 * Output rules: `--json` prints one document on stdout and nothing else; logs, progress and
 * errors go to stderr; one table maps typed error codes to exit codes.
 */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  isTTY: boolean;
}

let quiet = false;

/**
 * Output to a closed pipe (`xsmeta list | head -1`) ends quietly: EPIPE on stdout or stderr
 * stops what would follow on that stream instead of crashing the process with a stack trace,
 * and the run goes on (a restore finishes and is recorded either way). Installed on the first
 * output, and when a command hooks signals.
 */
export function quietPipes(): void {
  if (quiet) return;
  quiet = true;
  for (const s of [process.stdout, process.stderr])
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
    });
}

/** A line on stdout or stderr; none once the reader has gone (see quietPipes). */
function write(s: NodeJS.WriteStream, text: string): void {
  quietPipes();
  if (!s.destroyed) s.write(text);
}

/**
 * What a command prints reaches the terminal with no control character but our line breaks and
 * tabs: every line may hold a name from a backup or the pool (see core's escapeText). Fields
 * are also escaped where they are put into a line (a name's own line break too).
 */
export const stdio: Io = {
  out: (l) => write(process.stdout, `${escapeText(l, '\n\t')}\n`),
  err: (l) => write(process.stderr, `${escapeText(l, '\n\t')}\n`),
  get isTTY() {
    return Boolean(process.stderr.isTTY);
  },
};

/**
 * A backup was written but left VMs out (xapi kept refusing their export; each is named on
 * stderr): the record is partial. Not 0, so that a scheduled run's wrapper reports it.
 */
export const EXIT_PARTIAL = 4;

/** Exit codes by error code; everything else is 1. */
const EXIT: Record<string, number> = {
  BACKUP_VDI_MISSING: 3,
  USAGE: 2,
};

export function exitCodeOf(e: unknown): number {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' ? (EXIT[code] ?? 1) : 1;
}

/** `CODE: message`, with the code once (XAPI's messages often start with it already). */
export function withCode(code: string | undefined, message: string): string {
  return code && !message.startsWith(code) ? `${code}: ${message}` : message;
}

/** One clear line, prefixed by the program and the error code when there is one. */
export function errorLine(prog: string, e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  const msg = escapeText((e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '');
  return `${prog}: ${withCode(typeof code === 'string' && code !== 'USAGE' ? code : undefined, msg)}`;
}
