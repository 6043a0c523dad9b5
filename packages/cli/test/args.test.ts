import { spawnSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { bin, built } from './bins.js';
import { pool } from './support.js';

const VERSION = (
  (await import('../package.json', { with: { type: 'json' } })) as {
    default: { version: string };
  }
).default.version;

/** A pool whose simulator records its logins. */
async function watched() {
  const calls: string[] = [];
  const p = await pool({ vms: 3, log: (l) => calls.push(l.trim()) });
  return { ...p, logins: () => calls.filter((c) => c.startsWith('session.login')).length };
}

const NO_SR = '00000000-0000-4000-8000-000000000000';

it.skipIf(!built)(
  'every bad argument is a usage error: exit 2, one line naming it, before anything is done (needs dist)',
  async () => {
    const p = await watched();
    const before = p.logins();
    const cases: [Parameters<typeof bin>[0], string[], RegExp][] = [
      ['xsmeta', ['backup', '--sr', ''], /--sr is empty: give a uuid/],
      ['xsmeta', ['backup', '--sr', 'not-a-uuid'], /--sr 'not-a-uuid' is not a uuid/],
      ['xsmeta', ['restore', '--yes', '--sr', ''], /--sr is empty/],
      ['xe-restore-metadata', ['-y', '-u', ''], /-u is empty/],
      ['xe-backup-metadata', ['-u', '1234'], /-u '1234' is not a uuid/],
      ['xe-backup-metadata', ['extra'], /too many arguments/],
      ['xsmeta', ['backup', 'extra'], /too many arguments/],
      ['xe-restore-metadata', ['-p', '-l'], /option '-p' cannot be used with option '-l'/],
      ['xe-backup-metadata', ['-n', '-i', '-y'], /option '-i' cannot be used with option '-n'/],
      ['xsmeta', ['restore', '--mode', 'sr', '--mode', 'all'], /--mode is given twice/],
      ['xe-restore-metadata', ['-m', 'sr', '-m', 'all', '-y'], /-m is given twice/],
      ['xe-backup-metadata', ['-k', '5', '-k', '6'], /-k is given twice/],
      ['xsmeta', ['schedule', 'weekly', 'daily'], /too many arguments/],
      ['xsmeta', ['schedule', 'hourly'], /use one of daily, weekly, monthly, never, run/],
      ['xsmeta', ['backup', '--keep', '-5'], /keep must be 1\.\.100, not -5/],
      ['xsmeta', ['backup', '--bogus'], /unknown option '--bogus'/],
      ['xsmeta', ['restore', '--yes', '--date', 'yesterday'], /YYYY-MM-DD-HH-MM-SS/],
      ['xsmeta', ['frobnicate'], /unknown command 'frobnicate'/],
      ['xsmeta', ['legacy', 'erase'], /use one of list, convert/],
    ];
    for (const [name, args, message] of cases) {
      const r = await bin(name, args, p.env);
      const what = `${name} ${args.join(' ')}`;
      expect(r.code, what).toBe(2);
      expect(r.stderr, what).toMatch(message);
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(r.stdout, what).toBe('');
    }
    expect(p.logins()).toBe(before);
    // -n with -c is upstream's way to create the disk and print its uuid.
    const nc = await bin('xe-backup-metadata', ['-n', '-c'], p.env);
    expect(nc.code).toBe(0);
    expect(nc.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    await p.close();
  },
  120_000,
);

it.skipIf(!built)(
  'an SR uuid that names no SR is SR_NOT_FOUND naming it, printed with its code once (needs dist)',
  async () => {
    const p = await watched();
    for (const [name, args] of [
      ['xsmeta', ['backup', '--sr', NO_SR, '--create']],
      ['xsmeta', ['list', '--sr', NO_SR]],
      ['xsmeta', ['restore', '--yes', '--sr', NO_SR]],
      ['xe-restore-metadata', ['-y', '-u', NO_SR]],
      ['xe-restore-metadata', ['-l', '-u', NO_SR]],
      ['xe-backup-metadata', ['-c', '-u', NO_SR]],
    ] as const) {
      const r = await bin(name, [...args], p.env);
      const what = `${name} ${args.join(' ')}`;
      expect(r.code, what).toBe(1);
      expect(r.stderr.trim(), what).toBe(
        `${name}: SR_NOT_FOUND: there is no SR ${NO_SR} in this pool: 'xe sr-list' shows the SRs`,
      );
    }
    // A wrong password: XAPI's code once, not `CODE: CODE: ...`.
    const bad = await bin('xsmeta', ['list'], { ...p.env, XSMETA_PASSWORD: 'wrong' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^xsmeta: SESSION_AUTHENTICATION_FAILED: /);
    expect(bad.stderr.match(/SESSION_AUTHENTICATION_FAILED/g)).toHaveLength(1);
    await p.close();
  },
  120_000,
);

it.skipIf(!built)(
  '--help on every command exits 0 (and -h on the compatibility ones), help <command>, --version everywhere (needs dist)',
  async () => {
    const env = { XSMETA_URL: undefined };
    const commands = [
      'backup',
      'list',
      'verify',
      'restore',
      'schedule',
      'history',
      'legacy',
      'console',
      'completion',
    ];
    for (const c of commands) {
      const h = await bin('xsmeta', [c, '--help'], env);
      expect(h.code, c).toBe(0);
      expect(h.stdout, c).toMatch(new RegExp(`^Usage: xsmeta ${c}`));
      const help = await bin('xsmeta', ['help', c], env);
      expect(help.code, c).toBe(0);
      expect(help.stdout, c).toBe(h.stdout);
      const v = await bin('xsmeta', [c, '--version'], env);
      expect(v, c).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    }
    for (const name of ['xe-backup-metadata', 'xe-restore-metadata'] as const) {
      for (const flag of ['-h', '--help']) {
        const h = await bin(name, [flag], env);
        expect(h.code, `${name} ${flag}`).toBe(0);
        expect(h.stdout).toMatch(new RegExp(`^Usage: ${name}`));
        // The variables an operator sets, TLS, deadline and cron among them.
        for (const v of [
          'XSMETA_URL',
          'XSMETA_TLS_FINGERPRINT',
          'XSMETA_TIMEOUT_MS',
          'XSMETA_CRON_DIR',
        ])
          expect(h.stdout).toContain(v);
      }
      expect(await bin(name, ['--version'], env)).toMatchObject({
        code: 0,
        stdout: `${VERSION}\n`,
      });
    }
    const top = await bin('xsmeta', ['--help'], env);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain('XSMETA_TLS_FINGERPRINT');
    expect(top.stdout).toMatch(/3 the SR has no backup VDI/);
    // No command at all: the help, on stderr, as a usage error.
    const none = await bin('xsmeta', [], env);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^Usage: xsmeta/);
  },
  120_000,
);

it.skipIf(!built)(
  'xsmeta completion bash is a valid bash script that completes commands and their flags (needs dist)',
  async () => {
    const r = await bin('xsmeta', ['completion', 'bash'], {});
    expect(r.code).toBe(0);
    const script = r.stdout;
    expect(spawnSync('bash', ['-n'], { input: script }).status).toBe(0);
    const complete = (line: string) =>
      spawnSync(
        'bash',
        [
          '-c',
          `${script}\nCOMP_WORDS=(${line}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); ${
            line.startsWith('xsmeta') ? '_xsmeta' : `_${line.split(' ')[0]!.replace(/-/g, '_')}`
          }; echo "\${COMPREPLY[*]}"`,
        ],
        { encoding: 'utf8' },
      ).stdout.trim();
    expect(complete('xsmeta res')).toBe('restore');
    expect(complete('xsmeta re')).toBe('restore repair');
    expect(complete('xsmeta restore --d')).toBe('--date --dry-run --dev-dir');
    expect(complete('xsmeta schedule w')).toBe('weekly');
    expect(complete('xe-restore-metadata -')).toContain('-x');
  },
  60_000,
);

it.skipIf(!built)(
  'a silent server: the connection fails at XSMETA_TIMEOUT_MS, naming the host and the call (needs dist)',
  async () => {
    const sockets = new Set<Socket>();
    const server = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const r = await bin('xsmeta', ['list'], {
      XSMETA_URL: url,
      XSMETA_PASSWORD: 'x',
      XSMETA_TIMEOUT_MS: '300',
      XSMETA_STATE_DIR: undefined,
    });
    for (const s of sockets) s.destroy();
    server.close();
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `xsmeta: XAPI_TIMEOUT: session.login_with_password ${url}/jsonrpc: no answer within 300 ms (XSMETA_TIMEOUT_MS sets the deadline)`,
    );
    const bad = await bin('xsmeta', ['list'], {
      XSMETA_URL: url,
      XSMETA_PASSWORD: 'x',
      XSMETA_TIMEOUT_MS: 'soon',
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("XSMETA_TIMEOUT_MS must be a number of ms, not 'soon'");
  },
  60_000,
);

it.skipIf(!built)(
  'xsmeta backup prints its result on stdout; restore takes -y; schedule run --json prints JSON (needs dist)',
  async () => {
    const p = await pool({ vms: 3 });
    const b = await bin('xsmeta', ['backup', '--create'], p.env);
    expect(b.code).toBe(0);
    expect(b.stdout).toMatch(/^Backed up 3 VM\(s\) and \d+ template\(s\) to SR /);
    const r = await bin('xsmeta', ['restore', '-y', '--force', '--json'], p.env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ errors: 0, dryRun: false });
    const s = await bin('xsmeta', ['schedule', 'run', '--json'], p.env);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toEqual({ due: false, slot: null, outcome: null });
    await p.close();
  },
  120_000,
);

it.skipIf(!built)(
  'a self-signed pool certificate: the error prints its fingerprint and says to set XSMETA_TLS_FINGERPRINT, which then works (needs dist)',
  async () => {
    const { createServer } = await import('node:https');
    const { X509Certificate } = await import('node:crypto');
    const { readFileSync } = await import('node:fs');
    const fx = new URL('../../xapi/test/fixtures/', import.meta.url);
    const pem = {
      key: readFileSync(new URL('tls-key.pem', fx), 'utf8'),
      cert: readFileSync(new URL('tls-cert.pem', fx), 'utf8'),
    };
    const fp = new X509Certificate(pem.cert).fingerprint256;
    // A pool that refuses every login: enough to see that TLS was passed.
    const server = createServer(pem, (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          error: { code: 1, message: 'SESSION_AUTHENTICATION_FAILED', data: ['root', 'no'] },
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
    const env = { XSMETA_URL: url, XSMETA_PASSWORD: 'x', XSMETA_TLS_FINGERPRINT: undefined };
    const r = await bin('xsmeta', ['list'], env);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^xsmeta: XAPI_TLS: the pool's certificate is not trusted \(/);
    expect(r.stderr).toContain(`set XSMETA_TLS_FINGERPRINT=${fp}`);
    const pinned = await bin('xsmeta', ['list'], { ...env, XSMETA_TLS_FINGERPRINT: fp });
    server.closeAllConnections();
    server.close();
    expect(pinned.code).toBe(1);
    expect(pinned.stderr).toMatch(/SESSION_AUTHENTICATION_FAILED/);
  },
  60_000,
);
