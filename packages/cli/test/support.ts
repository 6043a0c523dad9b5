import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Simulator, startSimulator } from '@xsmeta/xapi-sim';
import { afterAll } from 'vitest';
import type { Io } from '../src/output.js';

/** Pools not closed by their test (it failed, or closed only the simulator): closed at the end. */
const leftOpen = new Set<() => Promise<void>>();
afterAll(async () => {
  for (const close of leftOpen) await close();
});

/** A captured Io: what a command printed on stdout and stderr. */
export function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l), isTTY: false };
}

/** A simulator plus the environment that points the commands at it. */
export async function pool(
  opts: { vms?: number; srs?: number; log?: (line: string) => void } = {},
): Promise<{ sim: Simulator; dir: string; env: Record<string, string>; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-cli-'));
  const sim = await startSimulator({
    stateDir: join(dir, 'sim'),
    vms: opts.vms ?? 8,
    srs: opts.srs ?? 2,
    seed: 3,
    ...(opts.log ? { log: opts.log } : {}),
  });
  // The cron folder is the test's own: no test ever writes the machine's /etc/cron.d.
  const env = {
    ...sim.env,
    XSMETA_STATE_DIR: join(dir, 'state'),
    XSMETA_CRON_DIR: join(dir, 'cron.d'),
  };
  await mkdir(env.XSMETA_CRON_DIR);
  const close = async () => {
    leftOpen.delete(close);
    try {
      await sim.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  leftOpen.add(close);
  return { sim, dir, env, close };
}

/** Runs fn with process.env extended by env (the commands read settings from it). */
export async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

/**
 * The devices plugged in the control domain: every entry under the device folder that is no
 * folder. A real host's device path (VBD.device) may nest, e.g. sm/backend/<sr>/<vdi>.
 */
export function devicesLeft(devDir: string): string[] {
  return readdirSync(devDir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => e.name);
}

/** Every event of the state folder's log, oldest first (what `history --run` shows, all runs). */
export async function allEvents(
  stateDir: string,
): Promise<{ stream: string; type: string; data: Record<string, unknown> }[]> {
  const { openEvents } = await import('../src/adapters/event-log.js');
  const log = openEvents(stateDir);
  const out: { stream: string; type: string; data: Record<string, unknown> }[] = [];
  try {
    for await (const e of log.readAll())
      out.push({ stream: e.stream, type: e.type, data: e.data as Record<string, unknown> });
  } finally {
    await log.close();
  }
  return out;
}

/**
 * A TCP relay to the pool at `url` that passes bytes until `holdWhen()` is true (asked on every
 * chunk, both ways), then holds them until `release()`: a run that talks to the pool through it
 * stops at a known point, with no timer. `held` resolves when the first chunk is held.
 */
export async function relay(
  url: string,
  holdWhen: () => boolean,
): Promise<{ url: string; held: Promise<void>; release(): void; close(): Promise<void> }> {
  const target = new URL(url);
  let holding = false;
  let released = false;
  let onHeld = () => {};
  const held = new Promise<void>((r) => {
    onHeld = r;
  });
  const queue: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const pass = (from: Socket, to: Socket) => {
    from.on('data', (b: Buffer) => {
      if (!released && (holding || holdWhen())) {
        holding = true;
        onHeld();
        queue.push(() => to.write(b));
      } else to.write(b);
    });
    from.on('end', () => (holding && !released ? queue.push(() => to.end()) : to.end()));
    from.on('error', () => to.destroy());
    from.on('close', () => sockets.delete(from));
  };
  const server = createServer((client) => {
    const pool = tcpConnect(Number(target.port), target.hostname);
    sockets.add(client).add(pool);
    pass(client, pool);
    pass(pool, client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `${target.protocol}//127.0.0.1:${port}`,
    held,
    release() {
      released = true;
      for (const send of queue.splice(0)) send();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
