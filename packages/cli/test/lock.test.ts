import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { lockSr, lockWaitMs } from '../src/process/lock.js';
import { childModule } from './child-module.js';

const LOCK = await childModule('lock', "export { lockSr } from './src/process/lock.js';\n");

/** The pid of a process that has exited. */
const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

/**
 * A process that tries to take the SR's lock once (no --wait) when it gets SIGUSR1, says
 * `won` or `lost`, and, when it won, holds the lock until its stdin closes, then exits
 * without releasing it (as a killed run would): the next round starts from a stale lock.
 */
function contender(dir: string) {
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { lockSr } from '${LOCK}';
       process.on('SIGUSR1', async () => {
         try {
           await lockSr(${JSON.stringify(dir)}, 'sr-1', false);
           process.stdout.write('won\\n');
           process.stdin.on('end', () => process.exit(0));
           process.stdin.resume();
         } catch (e) {
           process.stdout.write(e.code === 'BACKUP_LOCKED' ? 'lost\\n' : 'error ' + e.message + '\\n');
           process.exit(0);
         }
       });
       process.stdout.write('ready\\n');
       setInterval(() => {}, 60_000);`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (d) => {
    out += d;
    for (const w of waiters.splice(0)) w();
  });
  const said = (word: RegExp) =>
    new Promise<string>((resolve) => {
      const check = () => {
        const m = word.exec(out);
        if (m) resolve(m[0]);
        else waiters.push(check);
      };
      check();
    });
  return {
    ready: said(/ready\n/),
    outcome: said(/(won|lost|error .*)\n/),
    exited: new Promise<void>((r) => child.once('exit', () => r())),
    go: () => child.kill('SIGUSR1'),
    release: () => child.stdin.end(),
  };
}

it('of 8 processes that find the same stale lock at once, exactly one takes it; round after round', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-lock-'));
  await mkdir(join(dir, 'locks'));
  const lock = join(dir, 'locks', 'backup-sr-1.lock');
  writeFileSync(lock, JSON.stringify({ host: hostname(), pid: deadPid() }));
  for (let round = 0; round < 15; round++) {
    const cs = Array.from({ length: 8 }, () => contender(dir));
    // The barrier: every one is loaded and waiting before any is told to go.
    await Promise.all(cs.map((c) => c.ready));
    for (const c of cs) c.go();
    const outcomes = await Promise.all(cs.map((c) => c.outcome));
    for (const c of cs) c.release();
    await Promise.all(cs.map((c) => c.exited));
    expect(
      outcomes.filter((o) => o === 'won\n'),
      `round ${round}: ${JSON.stringify(outcomes)}`,
    ).toHaveLength(1);
    expect(
      outcomes.filter((o) => o === 'lost\n'),
      `round ${round}: ${JSON.stringify(outcomes)}`,
    ).toHaveLength(7);
  }
  // No claim or half-made lock is left beside it: only the last winner's (now stale) lock.
  expect(readdirSync(join(dir, 'locks'))).toEqual(['backup-sr-1.lock']);
  await rm(dir, { recursive: true, force: true });
}, 180_000);

it('an empty or unreadable lock names no live owner: it is stale and taken over', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-lock-'));
  await mkdir(join(dir, 'locks'));
  const lock = join(dir, 'locks', 'backup-sr-1.lock');
  // An unfinished lock file of a dead process (killed between create and write) goes too.
  const half = join(dir, 'locks', `.backup-sr-1.lock.${deadPid()}.0123456789ab`);
  writeFileSync(half, '');
  for (const text of ['', 'garbage\n', '{"host":']) {
    writeFileSync(lock, text);
    const unlock = await lockSr(dir, 'sr-1', false);
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: process.pid });
    unlock();
    expect(existsSync(lock)).toBe(false);
  }
  expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

it('--wait waits for a live holder up to its bound, then fails with a clear error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-lock-'));
  const unlock = await lockSr(dir, 'sr-1', false);
  await expect(lockSr(dir, 'sr-1', true, 300)).rejects.toMatchObject({
    code: 'BACKUP_LOCKED',
    message: expect.stringMatching(
      new RegExp(
        `still running \\(pid ${process.pid} on .*\\) after waiting 0.3 s: try again later`,
      ),
    ),
  });
  // Freed while waiting: the waiter gets it.
  const waiting = lockSr(dir, 'sr-1', true, 600_000);
  unlock();
  (await waiting)();
  expect(lockWaitMs({})).toBe(30 * 60 * 1000);
  expect(lockWaitMs({ XSMETA_LOCK_WAIT_SECONDS: '5' })).toBe(5000);
  await rm(dir, { recursive: true, force: true });
});
