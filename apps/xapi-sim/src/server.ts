// startSimulator: the pool's state folder, the HTTP server on 127.0.0.1 and the local Unix
// socket, DIR/env and DIR/inventory.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { type FaultControl, type FaultOptions, Faults } from './faults.js';
import { handler } from './http.js';
import { Db, NULL, type Rec } from './model.js';
import { Pool, USERNAME } from './pool.js';
import { Prng } from './prng.js';
import { networkRecord, srRecord } from './records.js';
import { seedHostAndPool, seedPool } from './seed.js';

export interface SimulatorOptions {
  stateDir: string;
  port?: number;
  vms?: number;
  srs?: number;
  seed?: number;
  password?: string;
  freshPool?: boolean;
  /** Unix socket path (default DIR/xapi.sock). */
  socket?: string;
  faults?: FaultOptions;
  log?: (line: string) => void;
}

export interface Simulator {
  url: string;
  port: number;
  stateDir: string;
  env: Record<string, string>;
  /** The Unix socket the pool is also served on (a root login is trusted there). */
  socketPath: string;
  faults: FaultControl;
  /** Test hook: sets a VM's power_state (the simulator has no VM.start). */
  setPowerState(uuid: string, state: 'Halted' | 'Running' | 'Paused' | 'Suspended'): void;
  close(): Promise<void>;
}

/** Starts a simulated pool on 127.0.0.1; see the README. */
export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const dir = opts.stateDir;
  const socketPath = opts.socket ?? join(dir, 'xapi.sock');
  // A Unix socket path holds at most 107 bytes.
  if (Buffer.byteLength(socketPath) > 107)
    throw new Error(`the socket path ${socketPath} is too long: give a shorter one with --socket`);
  mkdirSync(join(dir, 'sr'), { recursive: true });
  mkdirSync(join(dir, 'dev'), { recursive: true });
  const password = opts.password ?? 'xsmeta';
  const statePath = join(dir, 'pool.json');
  let db: Db;
  if (existsSync(statePath) && !opts.freshPool) {
    db = Db.fromJSON(
      (JSON.parse(readFileSync(statePath, 'utf8')) as { db: Record<string, Record<string, Rec>> })
        .db,
    );
  } else if (existsSync(statePath) || (opts.freshPool && readdirSync(join(dir, 'sr')).length > 0)) {
    // --fresh-pool: new hardware, same storage re-attached. SRs come back with their uuids,
    // their VDIs are found again by SR.scan; VMs, networks, the database are gone.
    db = new Db();
    const r = new Prng((opts.seed ?? 1) + 7919 + Date.now());
    const srs = readdirSync(join(dir, 'sr'))
      .filter((d) => /^[0-9a-f-]{36}$/.test(d))
      .sort();
    const refs = srs.map((uuid, i) => db.add('SR', srsRecord(uuid, i)));
    seedHostAndPool(db, r, refs[0] ?? NULL);
    for (const [i, name] of [
      'Pool-wide network associated with eth0',
      'Pool-wide network associated with eth1',
    ].entries())
      db.add('network', networkRecord({ uuid: r.uuid(), name, bridge: `xenbr${i}` }));
    const pool = new Pool(dir, password, db);
    for (const ref of refs) pool.scanSr(ref);
    for (const f of readdirSync(join(dir, 'dev')))
      rmSync(join(dir, 'dev', f), { recursive: true, force: true });
  } else {
    db = new Db();
    const { images } = seedPool(db, {
      vms: opts.vms ?? 20,
      srs: opts.srs ?? 2,
      seed: opts.seed ?? 1,
    });
    for (const img of images) {
      mkdirSync(join(dir, 'sr', img.sr), { recursive: true });
      const p = join(dir, 'sr', img.sr, `${img.vdi}.img`);
      writeFileSync(p, '');
      truncateSync(p, img.size);
    }
  }
  const faults = new Faults(opts.faults);
  const pool = new Pool(dir, password, db, faults);
  pool.save();
  const log = opts.log ?? (() => {});
  const sockets = new Set<Socket>();
  const track = (srv: http.Server) =>
    srv.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
  const server = track(http.createServer(handler(pool, log, false)));
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  // The local socket, as a host's /var/lib/xcp/xapi: the same API, a root login trusted.
  rmSync(socketPath, { force: true });
  const local = track(http.createServer(handler(pool, log, true)));
  await new Promise<void>((resolve, reject) => {
    local.once('error', reject);
    local.listen(socketPath, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const dom0 = pool.db.get('VM', pool.dom0())!;
  const host = [...pool.db.table('host').values()][0]!;
  writeFileSync(
    join(dir, 'inventory'),
    `INSTALLATION_UUID='${host.uuid}'\nCONTROL_DOMAIN_UUID='${dom0.uuid}'\nPRODUCT_BRAND='XCP-ng'\nPRODUCT_VERSION='8.3.0'\n`,
  );
  const env = {
    XSMETA_URL: url,
    XSMETA_USERNAME: USERNAME,
    XSMETA_PASSWORD: password,
    XSMETA_INVENTORY: join(dir, 'inventory'),
    XSMETA_DEV_DIR: join(dir, 'dev'),
    XSMETA_SOCKET: socketPath,
  };
  // `export KEY=value` lines that `. DIR/env` loads; it holds the password: owner only.
  const envPath = join(dir, 'env');
  rmSync(envPath, { force: true });
  writeFileSync(
    envPath,
    `${Object.entries(env)
      .map(([k, v]) => `export ${k}=${shellWord(v)}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  );
  chmodSync(envPath, 0o600);
  const closeServer = (srv: http.Server) =>
    new Promise<void>((resolve) => {
      srv.close(() => resolve());
    });
  return {
    url,
    port,
    socketPath,
    stateDir: dir,
    env,
    faults,
    setPowerState(uuid: string, state: 'Halted' | 'Running' | 'Paused' | 'Suspended') {
      const hit = pool.db.byUuid('VM', uuid);
      if (!hit) throw new Error(`no VM ${uuid}`);
      pool.db.mod('VM', hit[0], { power_state: state });
    },
    close: async () => {
      const done = Promise.all([closeServer(server), closeServer(local)]);
      for (const s of sockets) s.destroy();
      await done;
      rmSync(socketPath, { force: true });
      pool.flush();
    },
  };
}

/** A value as one shell word: as it is when it is safe, else single-quoted. */
function shellWord(v: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(v) ? v : `'${v.replace(/'/g, "'\\''")}'`;
}

function srsRecord(uuid: string, i: number): Rec {
  return srRecord({ uuid, name: `Re-attached SR ${i + 1}`, desc: '' });
}
