import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XapiClient } from '@xsmeta/xapi';

/**
 * The disaster-recovery walkthrough that `pnpm demo` runs: a simulated pool in a temporary
 * folder, backed up with the real commands, lost, and restored.
 */
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);
const work = mkdtempSync(join(tmpdir(), 'xsmeta-demo-'));
const state = join(work, 'pool');
const cronDir = join(work, 'cron.d');
mkdirSync(cronDir);
let sim: ChildProcess | null = null;
let env: Record<string, string> = {};

const say = (s: string) => console.log(`\n\u001b[1m== ${s}\u001b[0m`);

function startSim(extra: string[]): Promise<void> {
  return new Promise((resolveStart, reject) => {
    const child = spawn(bin('xapi-sim'), ['--state', state, '--port', '0', ...extra], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    sim = child;
    child.once('exit', (code) => reject(new Error(`the simulator exited early (${code})`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('XAPI simulator listening on')) {
        console.log(`  ${d.toString().trim()}`);
        env = Object.fromEntries(
          readFileSync(join(state, 'env'), 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.replace(/^export\s+/, ''))
            .map((l) => [
              l.slice(0, l.indexOf('=')),
              l.slice(l.indexOf('=') + 1).replace(/^'(.*)'$/, '$1'),
            ]),
        );
        resolveStart();
      }
    });
  });
}

async function stopSim(): Promise<void> {
  const s = sim;
  sim = null;
  if (!s || s.exitCode !== null) return;
  s.removeAllListeners('exit');
  await new Promise<void>((r) => {
    s.once('exit', () => r());
    s.kill('SIGTERM');
  });
}

/** Runs one of our commands as an administrator would, showing it and its output. */
function run(
  cmd: string,
  args: string[],
  opts: { quiet?: boolean; expect?: number } = {},
): Promise<string> {
  console.log(`$ ${cmd} ${args.join(' ')}`);
  return new Promise((ok, fail) => {
    const child = spawn(bin(cmd), args, {
      env: {
        ...process.env,
        ...env,
        XSMETA_STATE_DIR: join(work, 'xsmeta-state'),
        // The schedule's cron entry goes to the demo's own folder, never the system's.
        XSMETA_CRON_DIR: cronDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) =>
      process.stderr.write(d.toString().replace(/^(?=.)/gm, '  ')),
    );
    child.once('exit', (code) => {
      if (!opts.quiet)
        for (const line of out.trimEnd().split('\n').filter(Boolean)) console.log(`  ${line}`);
      if (code !== (opts.expect ?? 0)) fail(new Error(`${cmd} exited ${code}`));
      else ok(out);
    });
  });
}

async function vms(): Promise<Map<string, string>> {
  const x = await XapiClient.connect({
    url: env.XSMETA_URL!,
    username: env.XSMETA_USERNAME!,
    password: env.XSMETA_PASSWORD!,
  });
  const out = new Map<string, string>();
  for (const v of (
    await x.getAllRecords<{
      uuid: string;
      name_label: string;
      is_control_domain: boolean;
      is_a_snapshot: boolean;
      other_config: Record<string, string>;
    }>('VM')
  ).values()) {
    if (!v.is_control_domain && !v.is_a_snapshot && v.other_config.default_template !== 'true')
      out.set(v.uuid, v.name_label);
  }
  await x.logout();
  return out;
}

function occupancy(
  rows: { storedBytes: number; date: string }[],
  capacity = 500 * 1024 * 1024,
): void {
  const used = rows.reduce((n, r) => n + r.storedBytes, 0);
  const width = 50;
  const filled = Math.max(1, Math.round((used / capacity) * width));
  console.log(
    `  ring: [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(used / 1024).toFixed(0)} KiB of ${capacity / 1024 / 1024} MiB, ${rows.length} of 25 backups kept: ${rows.map(() => '|').join('')}`,
  );
}

async function main(): Promise<void> {
  say('1. A pool: 30 VMs over two shared SRs (simulated, speaking XAPI on 127.0.0.1)');
  await startSim(['--vms', '30', '--srs', '2', '--seed', '42']);
  const before = await vms();
  const x = await XapiClient.connect({
    url: env.XSMETA_URL!,
    username: 'root',
    password: env.XSMETA_PASSWORD!,
  });
  const srs = [...(await x.getAllRecords<{ uuid: string; name_label: string }>('SR')).values()];
  await x.logout();
  const sr = srs[0]!.uuid;
  console.log(
    `  ${before.size} VMs and custom templates; SRs: ${srs.map((s) => `${s.name_label} (${s.uuid})`).join(', ')}`,
  );

  say('2. Back up: the first run creates the Pool Metadata Backup VDI (-c)');
  await run('xe-backup-metadata', ['-u', sr]).catch(() =>
    console.log('  (exit 3: no backup VDI yet, as upstream; -c creates it)'),
  );
  await run('xe-backup-metadata', ['-c', '-u', sr, '-v']);
  await run('xsmeta', ['backup', '--sr', sr]);
  await run('xsmeta', ['verify', '--sr', sr]);
  const rows = JSON.parse(await run('xsmeta', ['list', '--sr', sr, '--json'], { quiet: true })) as {
    storedBytes: number;
    rawBytes: number;
    date: string;
    vmCount: number;
  }[];
  for (const r of rows)
    console.log(
      `  ${r.date}: ${r.vmCount} VMs, ${r.rawBytes} bytes of metadata stored in ${r.storedBytes}`,
    );
  occupancy(rows);

  say('3. Schedule weekly backups to the default SR');
  await run('xsmeta', ['schedule', 'weekly']);

  say('4. Disaster: the hosts are gone. A new pool on new hardware re-attaches the same storage');
  await stopSim();
  await startSim(['--fresh-pool']);
  console.log(`  VMs in the new pool: ${(await vms()).size}`);

  say('5. Probe the SR for its backup VDI (only the deterministic uuid is trusted) and list');
  await run('xe-restore-metadata', ['-u', sr, '-p']);
  await run('xe-restore-metadata', ['-u', sr, '-l']);

  say('6. Dry run: every check, no change to the pool');
  await run('xe-restore-metadata', ['-u', sr, '-n', '-y'], { quiet: true }).then((o) =>
    console.log(`  ${o.trim().split('\n').at(-1)}`),
  );
  console.log(`  VMs in the pool after the dry run: ${(await vms()).size}`);

  say('7. Restore the VMs on this SR first (-m sr)');
  await run('xe-restore-metadata', ['-u', sr, '-m', 'sr', '-y'], { quiet: true }).then((o) =>
    console.log(`  ${o.trim().split('\n').at(-1)}`),
  );

  say('8. Then all VM metadata (-m all); -f replaces the VMs restored a moment ago');
  const final = await run('xe-restore-metadata', ['-u', sr, '-m', 'all', '-y', '-f'], {
    quiet: true,
  });

  say('9. Check: every VM came back with its uuid and name');
  const after = await vms();
  const missing = [...before].filter(([uuid, name]) => after.get(uuid) !== name);
  console.log(
    `  ${before.size - missing.length} of ${before.size} VMs and templates back with their uuid and name${missing.length ? `; MISSING: ${missing.map(([u]) => u).join(', ')}` : ''}`,
  );
  await run('xsmeta', ['history'], { quiet: true }).then((o) =>
    console.log(`  ${o.trim().split('\n').length} runs recorded (xsmeta history)`),
  );
  console.log(`\n${final.trim().split('\n').at(-1)}`);
  if (missing.length > 0 || !/and 0 error\(s\)$/.test(final.trim())) process.exitCode = 1;
}

try {
  await main();
} catch (e) {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exitCode = 1;
} finally {
  await stopSim();
  rmSync(work, { recursive: true, force: true });
}
