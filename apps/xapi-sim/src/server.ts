import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { open as openFile, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { decodeMethodCall, encodeMethodResponse, type XmlRpcValue } from '@xsmeta/xapi';
import { dumpDb } from './dbxml.js';
import { Failure } from './errors.js';
import { type FaultControl, type FaultOptions, Faults } from './faults.js';
import { exportMetadata, importMetadata, restoreDb } from './metadata.js';
import { dispatch } from './methods.js';
import { Db, NULL, type Rec } from './model.js';
import { Pool, USERNAME } from './pool.js';
import { Prng } from './prng.js';
import { networkRecord, seedHostAndPool, seedPool, srRecord } from './seed.js';

export interface SimulatorOptions {
  stateDir: string;
  port?: number;
  vms?: number;
  srs?: number;
  seed?: number;
  password?: string;
  freshPool?: boolean;
  faults?: FaultOptions;
  log?: (line: string) => void;
}

export interface Simulator {
  url: string;
  port: number;
  stateDir: string;
  env: Record<string, string>;
  faults: FaultControl;
  close(): Promise<void>;
}

function readBody(req: http.IncomingMessage, limit = 512 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        reject(new Failure('REQUEST_TOO_LARGE', []));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sessionOf(req: http.IncomingMessage, url: URL): string {
  const q = url.searchParams.get('session_id');
  if (q) return q;
  const cookie = /session_id=([^;]+)/.exec(req.headers.cookie ?? '');
  if (cookie) return decodeURIComponent(cookie[1]!);
  return '';
}

/** Starts a simulated pool on 127.0.0.1; see the README and CONTRACT.md. */
export async function startSimulator(opts: SimulatorOptions): Promise<Simulator> {
  const dir = opts.stateDir;
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
    for (const f of readdirSync(join(dir, 'dev'))) unlinkSync(join(dir, 'dev', f));
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
  const pool = new Pool(dir, password, db);
  pool.save();
  const faults = new Faults(opts.faults);
  const log = opts.log ?? (() => {});
  const sockets = new Set<import('node:net').Socket>();

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (faults.current.latencyMs)
        await new Promise((r) => setTimeout(r, faults.current.latencyMs));
      if (
        req.method === 'POST' &&
        (url.pathname === '/jsonrpc' ||
          url.pathname === '/' ||
          url.pathname === '/RPC2' ||
          url.pathname === '/xmlrpc')
      ) {
        const body = (await readBody(req, 64 * 1024 * 1024)).toString('utf8');
        const json = url.pathname === '/jsonrpc';
        let method = '';
        let params: XmlRpcValue[] = [];
        let id: unknown = null;
        let v1 = false;
        try {
          if (json) {
            const j = JSON.parse(body) as {
              method?: string;
              params?: XmlRpcValue[];
              id?: unknown;
              jsonrpc?: string;
            };
            method = String(j.method ?? '');
            params = j.params ?? [];
            id = j.id ?? null;
            v1 = j.jsonrpc !== '2.0';
          } else ({ method, params } = decodeMethodCall(body));
        } catch {
          res.writeHead(400).end('bad request');
          return;
        }
        if (faults.drop(method)) {
          req.socket.destroy();
          return;
        }
        let value: XmlRpcValue | undefined;
        let failure: Failure | undefined;
        try {
          const injected = faults.failure(method);
          if (injected) throw injected;
          value = await dispatch(pool, method, params);
        } catch (e) {
          failure =
            e instanceof Failure
              ? e
              : new Failure('INTERNAL_ERROR', [String((e as Error).message ?? e)]);
        }
        pool.scheduleSave();
        log(`${method} ${failure ? `-> ${failure.code}` : ''}`);
        if (json) {
          const reply = failure
            ? v1
              ? { result: null, error: [failure.code, ...failure.params], id }
              : {
                  jsonrpc: '2.0',
                  error: { code: 1, message: failure.code, data: failure.params },
                  id,
                }
            : v1
              ? { result: value, error: null, id }
              : { jsonrpc: '2.0', result: value, id };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
        } else {
          const reply: XmlRpcValue = failure
            ? { Status: 'Failure', ErrorDescription: [failure.code, ...failure.params] }
            : { Status: 'Success', Value: value! };
          res.writeHead(200, { 'content-type': 'text/xml' }).end(encodeMethodResponse(reply));
        }
        return;
      }
      // HTTP handlers
      const name = url.pathname;
      if (faults.drop(name)) {
        req.socket.destroy();
        return;
      }
      let session = sessionOf(req, url);
      const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      if (!session && basic) {
        const [u, pw] = Buffer.from(basic[1]!, 'base64').toString().split(':');
        session = pool.login(u ?? '', pw ?? '');
      }
      pool.checkSession(session);
      const taskId = url.searchParams.get('task_id') ?? '';
      const task = taskId && pool.db.get('task', taskId) ? taskId : pool.createTask(`HTTP ${name}`);
      const injected = faults.failure(name);
      const flag = (k: string) => url.searchParams.get(k) === 'true';
      const finish = (outcome: { result: XmlRpcValue } | { error: Failure }) => {
        pool.finishTask(task, outcome);
        pool.scheduleSave();
      };
      if (injected) {
        await readBody(req).catch(() => {});
        finish({ error: injected });
        res.writeHead(500, { 'task-id': task }).end(injected.code);
        return;
      }
      if (req.method === 'GET' && name === '/export_metadata') {
        const uuid = url.searchParams.get('uuid');
        const ref = uuid ? pool.db.byUuid('VM', uuid)?.[0] : url.searchParams.get('ref');
        if (!ref || !pool.db.get('VM', ref))
          throw new Failure(uuid ? 'UUID_INVALID' : 'HANDLE_INVALID', ['VM', uuid ?? String(ref)]);
        const tar = exportMetadata(pool, ref);
        finish({ result: '' });
        res
          .writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': tar.length,
            'task-id': task,
          })
          .end(tar);
        return;
      }
      if (req.method === 'GET' && name === '/pool/xmldbdump') {
        const xml = Buffer.from(dumpDb(pool.db, 1));
        finish({ result: '' });
        res
          .writeHead(200, {
            'content-type': 'text/xml',
            'content-length': xml.length,
            'task-id': task,
          })
          .end(xml);
        return;
      }
      if (
        req.method === 'PUT' &&
        (name === '/import_metadata' || name === '/pool/xmldbdump' || name === '/import_raw_vdi')
      ) {
        const body = await readBody(req);
        res.writeHead(200, { 'task-id': task }).end();
        setImmediate(async () => {
          try {
            if (name === '/import_metadata') {
              const refs = importMetadata(pool, new Uint8Array(body), {
                force: flag('force'),
                dryRun: flag('dry_run'),
              });
              finish({ result: refs });
            } else if (name === '/pool/xmldbdump') {
              restoreDb(pool, body.toString('utf8'), flag('dry_run'));
              finish({ result: '' });
            } else {
              const vdi = pool.rec('VDI', url.searchParams.get('vdi'));
              const sr = pool.rec('SR', vdi.SR);
              const fh = await openFile(pool.image(sr.uuid as string, vdi.uuid as string), 'r+');
              await fh.write(body, 0, body.length, 0);
              await fh.close();
              finish({ result: '' });
            }
          } catch (e) {
            finish({
              error:
                e instanceof Failure
                  ? e
                  : new Failure('INTERNAL_ERROR', [String((e as Error).message)]),
            });
          }
        });
        return;
      }
      if (req.method === 'GET' && name === '/export_raw_vdi') {
        const vdi = pool.rec('VDI', url.searchParams.get('vdi'));
        const sr = pool.rec('SR', vdi.SR);
        const data = await readFile(pool.image(sr.uuid as string, vdi.uuid as string));
        finish({ result: '' });
        res
          .writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': data.length,
            'task-id': task,
          })
          .end(data);
        return;
      }
      finish({ error: new Failure('HANDLER_NOT_FOUND', [name]) });
      res.writeHead(404).end('not found');
    } catch (e) {
      const f =
        e instanceof Failure ? e : new Failure('INTERNAL_ERROR', [String((e as Error).message)]);
      // As xapi does, a failed handler completes the caller's task with the failure.
      const failedTask = url.searchParams.get('task_id');
      if (failedTask && pool.db.get('task', failedTask)?.status === 'pending') {
        pool.finishTask(failedTask, { error: f });
        pool.scheduleSave();
      }
      if (!res.headersSent)
        res
          .writeHead(
            f.code === 'SESSION_INVALID' || f.code === 'SESSION_AUTHENTICATION_FAILED' ? 401 : 500,
          )
          .end(f.code);
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
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
  };
  writeFileSync(
    join(dir, 'env'),
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
  );
  return {
    url,
    port,
    stateDir: dir,
    env,
    faults,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      pool.flush();
    },
  };
}

function srsRecord(uuid: string, i: number): Rec {
  return srRecord({ uuid, name: `Re-attached SR ${i + 1}`, desc: '' });
}
