/**
 * Output rules: `--json` prints one document on stdout and nothing else; logs, progress and
 * errors go to stderr; one table maps typed error codes to exit codes.
 */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  isTTY: boolean;
}

export const stdio: Io = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  get isTTY() {
    return Boolean(process.stderr.isTTY);
  },
};

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
  const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? '';
  return `${prog}: ${withCode(typeof code === 'string' && code !== 'USAGE' ? code : undefined, msg)}`;
}
