// Over 400 lines on purpose: each journey needs the same tmux pane, simulator and screen
// readers, which stay beside the journeys they serve.
/**
 * End to end, in a real terminal: `xsmeta console` in a tmux pane of 80x24, against the
 * simulator. Back up, restore with a dry run, quit, and check that the terminal is back in
 * its normal mode; and restore, after the disaster, from a disk the old scripts wrote (an ext3
 * image made with mke2fs -d). Skipped while the CLI or the simulator is not built; tmux and
 * mke2fs (e2fsprogs) are required, with a message that says what to install.
 *
 * Whatever happens, nothing is left behind: each test has its own tmux server (its own socket),
 * killed with its panes' processes (the console) in afterAll, in a process 'exit' handler, and,
 * should the test worker itself be killed, by a watchdog process that outlives it; the same
 * three remove the simulator and the temporary folder.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI_BIN = join(ROOT, 'packages/cli/bin/xsmeta.js');
const CLI_DIST = join(ROOT, 'packages/cli/dist/bin/xsmeta.js');
const SIM_BIN = join(ROOT, 'apps/xapi-sim/bin/xapi-sim.js');
const SIM_DIST = join(ROOT, 'apps/xapi-sim/dist/main.js');

/** `xsmeta --help` lists `console`. */
function hasConsoleCommand(): boolean {
  if (!existsSync(CLI_DIST)) return false;
  const r = spawnSync(process.execPath, [CLI_BIN, '--help'], {
    encoding: 'utf8',
    timeout: 15_000,
    env: { ...process.env, NO_COLOR: '1' },
  });
  return /(^|\s)console(\s|$)/m.test(`${r.stdout ?? ''}\n${r.stderr ?? ''}`);
}

const BUILT = existsSync(SIM_DIST) && hasConsoleCommand();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * What a test leaves running or on disk, removed whatever happens: by `run()` (afterAll), by a
 * process 'exit' handler, and by a watchdog that waits for this worker to die (even by
 * SIGKILL) and then does the same from outside.
 */
class Leftovers {
  private readonly tmuxSockets = new Set<string>();
  private readonly pids = new Set<number>();
  private readonly children = new Set<ChildProcess>();
  private readonly dirs = new Set<string>();
  private watchdog: ChildProcess | undefined;
  /**
   * On exit, what can be done at once; the watchdog stays armed and does it all again once
   * this process is gone (only then are its children reaped, so only then can it wait for them).
   */
  private readonly onExit = () => {
    spawnSync('sh', ['-c', this.script(false)], { stdio: 'ignore', timeout: 30_000 });
  };

  constructor() {
    process.on('exit', this.onExit);
  }

  tmux(socket: string): void {
    this.tmuxSockets.add(socket);
    this.arm();
  }
  /** A child of this worker, until it exits (its pid could then be another process's). */
  child(child: ChildProcess): void {
    const pid = child.pid;
    if (pid === undefined) return;
    this.pids.add(pid);
    this.children.add(child);
    child.once('exit', () => {
      this.pids.delete(pid);
      this.children.delete(child);
      this.arm();
    });
    this.arm();
  }
  dir(dir: string): void {
    this.dirs.add(dir);
    this.arm();
  }

  /** The shell commands that remove everything (the panes' process groups first). */
  private script(wait = true): string {
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    const lines: string[] = [];
    for (const s of this.tmuxSockets) {
      lines.push(
        `for p in $(tmux -L ${q(s)} list-panes -a -F '#{pane_pid}' 2>/dev/null); do kill -TERM -- -$p $p 2>/dev/null; done`,
        `tmux -L ${q(s)} kill-server 2>/dev/null`,
        `rm -f "\${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/"${q(s)}`,
      );
    }
    // The simulator saves its state as it stops: its folder goes only once it is gone.
    for (const p of this.pids) {
      lines.push(`kill -TERM ${p} 2>/dev/null`);
      if (!wait) continue;
      lines.push(
        `n=0; while kill -0 ${p} 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done`,
        `kill -0 ${p} 2>/dev/null && kill -KILL ${p}`,
      );
    }
    for (const d of this.dirs) lines.push(`rm -rf ${q(d)}`);
    lines.push('true');
    return lines.join('\n');
  }

  /** (Re)starts the watchdog with the current list. */
  private arm(): void {
    this.watchdog?.kill('SIGKILL');
    const wait = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`;
    const dog = spawn('sh', ['-c', `${wait}\n${this.script()}`], {
      detached: true,
      stdio: 'ignore',
    });
    dog.unref();
    this.watchdog = dog;
  }

  /** afterAll: stops our children here (ours to reap) and waits for them, then the rest. */
  async run(): Promise<void> {
    await Promise.all(
      [...this.children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            const hard = setTimeout(() => c.kill('SIGKILL'), 30_000);
            c.once('exit', () => {
              clearTimeout(hard);
              resolve();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
    this.watchdog?.kill('SIGKILL');
    this.watchdog = undefined;
    spawnSync('sh', ['-c', this.script()], { stdio: 'ignore', timeout: 120_000 });
    this.tmuxSockets.clear();
    this.pids.clear();
    this.dirs.clear();
    process.off('exit', this.onExit);
  }
}

/** Starts the simulator in `dir`; resolves with the settings its env file gives. */
async function startSimulator(
  dir: string,
  left: Leftovers,
  extra: string[] = [],
): Promise<{ sim: ChildProcess; env: Record<string, string> }> {
  const state = join(dir, 'sim');
  const sim = spawn(
    process.execPath,
    [SIM_BIN, '--state', state, '--port', '0', '--vms', '6', '--srs', '2', '--seed', '7', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  left.child(sim);
  let out = '';
  await new Promise<void>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`simulator did not start: ${out}`)), 120_000);
    sim.stdout?.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('XAPI simulator listening on')) {
        clearTimeout(timer);
        resolveReady();
      }
    });
    sim.stderr?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    sim.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`simulator exited (${code}): ${out}`));
    });
  });
  const env: Record<string, string> = {};
  for (const line of (await readFile(join(state, 'env'), 'utf8')).split('\n')) {
    const m = /^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return { sim, env };
}

/** A tmux server of our own, one pane of exactly 80x24 (no status line). */
class Tmux {
  readonly socket = `xsmeta-e2e-${process.pid}-${randomUUID().slice(0, 8)}`;
  constructor(readonly conf: string) {}

  run(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, '-f', this.conf, ...args], {
      encoding: 'utf8',
      timeout: 10_000,
    });
  }

  screen(): string {
    return this.run('capture-pane', '-p', '-t', 'e2e');
  }

  /**
   * Types each key once the screen has shown the previous one handled (every key these tests
   * press changes the screen): no key is sent while the console may still be busy.
   */
  async keys(...keys: string[]): Promise<void> {
    for (const k of keys) {
      const before = this.screen();
      this.run('send-keys', '-t', 'e2e', k);
      await this.waitFor((s) => s !== before, 60_000, `the screen to change after ${k}`);
    }
  }

  /** Polls the screen (every 50 ms) until `pred` holds; the bound is generous for a busy machine. */
  async waitFor(
    pred: string | RegExp | ((screen: string) => boolean),
    timeoutMs = 60_000,
    what = String(pred),
  ): Promise<string> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const s = this.screen();
      if (
        typeof pred === 'string'
          ? s.includes(pred)
          : pred instanceof RegExp
            ? pred.test(s)
            : pred(s)
      )
        return s;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; the screen:\n${s}`);
      await sleep(50);
    }
  }
}

/** One JSON-RPC call to the pool (what XAPI serves at /jsonrpc). */
async function rpc<T>(url: string, method: string, params: unknown[]): Promise<T> {
  const res = await fetch(`${url}/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }),
  });
  const body = (await res.json()) as { result?: T; error?: unknown };
  if (body.error !== undefined) throw new Error(`${method}: ${JSON.stringify(body.error)}`);
  return body.result as T;
}

type VmRecord = {
  uuid: string;
  name_label: string;
  is_control_domain: boolean;
  is_a_snapshot: boolean;
  other_config: Record<string, string>;
};

/** The pool's VMs and custom templates (what the old script exported), by uuid. */
async function poolVms(url: string, session: string): Promise<Map<string, string>> {
  const all = await rpc<Record<string, VmRecord>>(url, 'VM.get_all_records', [session]);
  return new Map(
    Object.values(all)
      .filter(
        (v) =>
          !v.is_control_domain && !v.is_a_snapshot && v.other_config.default_template !== 'true',
      )
      .map((v) => [v.uuid, v.name_label]),
  );
}

/**
 * Writes what the old xe-backup-metadata left on an SR: an ext3 disk (made with mke2fs -d, never
 * mounted) holding one dated backup of every VM's real metadata export; SR.scan makes it a VDI.
 */
async function writeLegacyDisk(
  dir: string,
  url: string,
  password: string,
  date: string,
): Promise<{ srUuid: string; vms: Map<string, string> }> {
  const session = await rpc<string>(url, 'session.login_with_password', ['root', password]);
  const vms = await poolVms(url, session);
  const srs = await rpc<Record<string, { uuid: string; name_label: string; content_type: string }>>(
    url,
    'SR.get_all_records',
    [session],
  );
  const [srRef, sr] = Object.entries(srs).find(([, r]) => r.content_type !== 'iso')!;
  const tree = join(dir, 'legacy-tree');
  const backup = join(tree, 'metadata', date);
  await mkdir(join(backup, 'all'), { recursive: true });
  await mkdir(join(backup, 'by-sr', sr.uuid), { recursive: true });
  await writeFile(join(tree, '.ctxs-metadata-backup'), '1\n');
  await writeFile(
    join(backup, 'SRMETA.xml'),
    `<meta><sr uuid="${sr.uuid}" name_label="${sr.name_label}" name_description=""/></meta>`,
  );
  for (const uuid of vms.keys()) {
    const res = await fetch(`${url}/export_metadata?session_id=${session}&uuid=${uuid}`);
    expect(res.status).toBe(200);
    await writeFile(join(backup, 'all', `${uuid}.vmmeta`), Buffer.from(await res.arrayBuffer()));
    await symlink(`../../all/${uuid}.vmmeta`, join(backup, 'by-sr', sr.uuid, `${uuid}.vmmeta`));
  }
  const img = join(dir, 'sim', 'sr', sr.uuid, `${randomUUID()}.img`);
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext3', '-b', '1024', '-d', tree, img, '32M'], {
    stdio: 'ignore',
  });
  await rpc(url, 'SR.scan', [session, srRef]);
  await rpc(url, 'session.logout', [session]);
  return { srUuid: sr.uuid, vms };
}

/**
 * Runs `node xsmeta console` in a new tmux pane of 80x24 with the pool's settings (the password
 * through a file), then prints its exit status and the terminal's modes when it ends.
 */
async function launchConsole(
  dir: string,
  env: Record<string, string>,
  left: Leftovers,
): Promise<Tmux> {
  // The password goes through a file: it appears in no command line.
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, env.XSMETA_PASSWORD ?? '', { mode: 0o600 });
  const { XSMETA_PASSWORD: _password, ...rest } = env;
  const settings = {
    ...rest,
    XSMETA_PASSWORD_FILE: passwordFile,
    XSMETA_STATE_DIR: join(dir, 'state'),
  };
  const conf = join(dir, 'tmux.conf');
  await writeFile(
    conf,
    'set -g status off\nset -sg escape-time 0\nset -g default-terminal "screen-256color"\n',
  );
  const tmux = new Tmux(conf);
  left.tmux(tmux.socket);
  const script = [
    `node ${JSON.stringify(CLI_BIN)} console`,
    'echo "XSMETA-EXIT:$?"',
    // The terminal's modes after the console: icanon and echo when it was restored.
    'echo "MODES:$(stty -a | tr " ;" "\\n\\n" | grep -x -e icanon -e -icanon -e echo -e -echo | tr "\\n" " ")"',
    'exec sleep 300',
  ].join('; ');
  const envArgs = Object.entries(settings).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  tmux.run(
    'new-session',
    '-d',
    '-x',
    '80',
    '-y',
    '24',
    '-s',
    'e2e',
    ...envArgs,
    'sh',
    '-c',
    script,
  );
  expect(tmux.run('display', '-p', '-t', 'e2e', '#{pane_width}x#{pane_height}').trim()).toBe(
    '80x24',
  );
  return tmux;
}

describe('xsmeta console in a real terminal', () => {
  const left = new Leftovers();
  afterAll(() => left.run());

  it.skipIf(!BUILT)(
    'backs up, restores with a dry run, quits, and gives the terminal back',
    async () => {
      requireTools('tmux');
      const dir = await mkdtemp(join(tmpdir(), 'xsmeta-tui-e2e-'));
      left.dir(dir);
      const { env } = await startSimulator(dir, left);
      const tmux = await launchConsole(dir, env, left);

      // The menu, as xsconsole names it.
      const menu = await tmux.waitFor('Restore Virtual Machine Metadata from Legacy Backup');
      expect(menu).toContain('Schedule Virtual Machine Metadata');

      // Backup: pick the SR, see the success message.
      await tmux.keys('Down', 'Enter');
      await tmux.waitFor('Back up the VM metadata to which storage repository?');
      await tmux.keys('Enter');
      const afterPick = await tmux.waitFor(
        /has no Pool Metadata Backup disk yet|Backup Successful|failed/,
      );
      if (afterPick.includes('has no Pool Metadata Backup disk yet')) await tmux.keys('Enter');
      const backedUp = await tmux.waitFor(/Backup Successful|Metadata Backup failed/, 60_000);
      expect(backedUp).toContain('Backup Successful');
      expect(backedUp).toMatch(/\d+ VM\(s\) and \d+ template\(s\)/);
      await tmux.keys('Enter');

      // Restore, dry run: SR, newest backup, "Only VMs on This SR (Dry Run)", confirm.
      await tmux.waitFor('› Backup Virtual Machine Metadata');
      await tmux.keys('Down', 'Enter');
      await tmux.waitFor('Restore from the backups on which storage repository?');
      await tmux.keys('Enter');
      await tmux.waitFor('Select the metadata backup to restore from');
      await tmux.keys('Enter');
      await tmux.waitFor('Select the set of VMs to restore from');
      await tmux.keys('Down', 'Down');
      await tmux.waitFor('› Only VMs on This SR (Dry Run)');
      await tmux.keys('Enter');
      await tmux.waitFor('Every check runs; nothing in the pool changes.');
      await tmux.keys('Enter');
      const summary = await tmux.waitFor(
        /Restored \d+ VM\(s\), and \d+ error\(s\)|Metadata Restore failed/,
        300_000,
      );
      const m = /Restored (\d+) VM\(s\), and (\d+) error\(s\)/.exec(summary);
      expect(m, summary).not.toBeNull();
      // The pool still holds these VMs, so each is reported (as restorable or as existing).
      expect(Number(m![1]) + Number(m![2])).toBeGreaterThan(0);
      expect(summary).toContain('Dry run: nothing in the pool was changed.');

      // Quit: the shell gets its terminal back, in its normal mode.
      await tmux.keys('Escape');
      await tmux.waitFor('› Restore Virtual Machine Metadata');
      await tmux.keys('q');
      const after = await tmux.waitFor(/MODES:.*\S/);
      expect(after).toContain('XSMETA-EXIT:0');
      const modes = (/MODES:(.*)/.exec(after)?.[1] ?? '').trim().split(/\s+/);
      expect(modes).toContain('icanon');
      expect(modes).toContain('echo');
      expect(modes).not.toContain('-icanon');
      expect(after).not.toContain('Backup, Restore and Update');
    },
    600_000,
  );
  it.skipIf(!BUILT)(
    'restores from a disk of the old scripts after the disaster: dry run, then for real, every VM back with its uuid',
    async () => {
      requireTools('tmux', 'mke2fs');
      const dir = await mkdtemp(join(tmpdir(), 'xsmeta-tui-e2e-'));
      left.dir(dir);
      const date = '2023-11-05-02-00-00';
      const first = await startSimulator(dir, left);
      const { srUuid, vms } = await writeLegacyDisk(
        dir,
        first.env.XSMETA_URL!,
        first.env.XSMETA_PASSWORD!,
        date,
      );
      await new Promise((r) => {
        first.sim.once('exit', r);
        first.sim.kill('SIGTERM');
      });
      // The disaster: a new pool on new hardware, the same storage re-attached.
      const { env } = await startSimulator(dir, left, ['--fresh-pool']);
      const session = await rpc<string>(env.XSMETA_URL!, 'session.login_with_password', [
        'root',
        env.XSMETA_PASSWORD!,
      ]);
      // The new pool names the re-attached SR anew: the console lists it by that name.
      const srName = await rpc<string>(env.XSMETA_URL!, 'SR.get_name_label', [
        session,
        await rpc<string>(env.XSMETA_URL!, 'SR.get_by_uuid', [session, srUuid]),
      ]);
      const tmux = await launchConsole(dir, env, left);

      const toModes = async () => {
        await tmux.waitFor('› Restore Virtual Machine Metadata from Legacy Backup');
        await tmux.keys('Enter');
        await tmux.waitFor('Restore from the backups on which storage repository?');
        // Move to the SR that holds the legacy disk.
        for (let k = 0; k < 8 && !tmux.screen().includes(`› ${srName}`); k++)
          await tmux.keys('Down');
        await tmux.waitFor(`› ${srName}`);
        await tmux.keys('Enter');
        await tmux.waitFor('Only restore metadata from a disk you trust.');
        await tmux.keys('Enter');
        const list = await tmux.waitFor('Select the metadata backup to restore from');
        expect(list).toMatch(new RegExp(`› 2023-11-05 02:00:00\\s+${vms.size} VM\\(s\\)`));
        await tmux.keys('Enter');
        await tmux.waitFor('Select the set of VMs to restore from');
      };

      await tmux.waitFor('Restore Virtual Machine Metadata from Legacy Backup');
      await tmux.keys('Down', 'Down', 'Down');
      await toModes();
      await tmux.keys('Down', 'Down', 'Down');
      await tmux.waitFor('› All VM Metadata (Dry Run)');
      await tmux.keys('Enter');
      await tmux.waitFor('Every check runs; nothing in the pool changes.');
      await tmux.keys('Enter');
      const dry = await tmux.waitFor(/Restored \d+ VM\(s\), and \d+ error\(s\)|failed/, 60_000);
      expect(dry).toContain(`Restored ${vms.size} VM(s), and 0 error(s)`);
      expect(dry).toContain('Dry run: nothing in the pool was changed.');
      expect((await poolVms(env.XSMETA_URL!, session)).size).toBe(0);

      await tmux.keys('Escape');
      await toModes();
      await tmux.keys('Down');
      await tmux.waitFor('› All VM Metadata');
      await tmux.keys('Enter');
      await tmux.waitFor('The VMs are created in this pool from their metadata.');
      await tmux.keys('Enter');
      const real = await tmux.waitFor(/Restored \d+ VM\(s\), and \d+ error\(s\)|failed/, 60_000);
      expect(real).toContain(`Restored ${vms.size} VM(s), and 0 error(s)`);
      expect(await poolVms(env.XSMETA_URL!, session)).toEqual(vms);

      await tmux.keys('Escape');
      await tmux.waitFor('› Restore Virtual Machine Metadata from Legacy Backup');
      await tmux.keys('q');
      expect(await tmux.waitFor(/MODES:.*\S/)).toContain('XSMETA-EXIT:0');
    },
    600_000,
  );
});
