// The HTTP side of the simulated host: JSON-RPC and XML-RPC calls (ocaml/xapi/api_server.ml)
// and the HTTP handlers (export.ml, import.ml, pool_db_backup.ml, the raw VDI handlers).
import type http from 'node:http';
import { decodeMethodCall, encodeMethodResponse, type XmlRpcValue } from '@xsmeta/xapi';
import { dumpDb, restoreDb } from './dbxml.js';
import { Failure } from './errors.js';
import { exportMetadataRequest } from './metadata-export.js';
import { importMetadata } from './metadata-import.js';
import { dispatch, isEmergencyCall } from './methods.js';
import type { Pool } from './pool.js';
import { exportRawVdi, importRawVdi, write } from './raw-vdi.js';

/** Thrown when a body exceeds its bound: answered 413 with no XAPI code (xapi has none). */
class TooLarge extends Error {}

function readBody(req: http.IncomingMessage, limit = 512 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > limit) {
        reject(new TooLarge('request body too large'));
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

const asFailure = (e: unknown) =>
  e instanceof Failure ? e : new Failure('INTERNAL_ERROR', [String((e as Error).message ?? e)]);

const RPC_PATHS = new Set(['/jsonrpc', '/', '/RPC2', '/xmlrpc']);

/**
 * The request handler of the host. `trusted`: the request came over the local Unix socket,
 * where xapi trusts a root login whatever its password (xapi_session.ml).
 */
export function handler(
  pool: Pool,
  log: (line: string) => void,
  trusted: boolean,
): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> {
  const faults = pool.faults;
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      if (faults.current.latencyMs)
        await new Promise((r) => setTimeout(r, faults.current.latencyMs));
      if (req.method === 'POST' && RPC_PATHS.has(url.pathname)) {
        await rpc(pool, req, res, url, log, trusted);
        return;
      }
      await handle(pool, req, res, url, trusted);
    } catch (e) {
      if (e instanceof TooLarge) {
        if (!res.headersSent) res.writeHead(413, { connection: 'close' }).end();
        return;
      }
      const f = asFailure(e);
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
            { connection: 'close' },
          )
          .end(f.code);
      else res.destroy();
    }
  };
}

async function rpc(
  pool: Pool,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  log: (line: string) => void,
  trusted: boolean,
): Promise<void> {
  const faults = pool.faults;
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
  // api_server.ml `callback1`: in emergency mode every call but the emergency ones raises
  // HOST_STILL_BOOTING before dispatch; the JSON-RPC path answers it as a 2.0 response whose
  // `error` is the bare [code, params...] array and whose id is 0 (`jsoncallback`).
  if (faults.current.emergency && !isEmergencyCall(method)) {
    log(`${method} -> HOST_STILL_BOOTING`);
    if (json)
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ jsonrpc: '2.0', error: ['HOST_STILL_BOOTING'], id: 0 }));
    else
      res
        .writeHead(200, { 'content-type': 'text/xml' })
        .end(encodeMethodResponse({ Status: 'Failure', ErrorDescription: ['HOST_STILL_BOOTING'] }));
    return;
  }
  let value: XmlRpcValue | undefined;
  let failure: Failure | undefined;
  try {
    const injected = faults.failure(method);
    if (injected) throw injected;
    value = await dispatch(pool, method, params, { json, trusted });
  } catch (e) {
    failure = asFailure(e);
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
}

/** Writes `data` in pieces, waiting for the socket to drain; stops after `cut` bytes. */
async function stream(res: http.ServerResponse, data: Buffer, cut: number | null): Promise<void> {
  const end = cut === null ? data.length : Math.min(cut, data.length);
  for (let off = 0; off < end; off += 64 * 1024) {
    await write(res, data.subarray(off, Math.min(end, off + 64 * 1024)));
    if (res.destroyed) return;
  }
}

async function handle(
  pool: Pool,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  trusted: boolean,
): Promise<void> {
  const faults = pool.faults;
  const name = url.pathname;
  const known =
    (req.method === 'GET' &&
      ['/export_metadata', '/pool/xmldbdump', '/export_raw_vdi'].includes(name)) ||
    (req.method === 'PUT' &&
      ['/import_metadata', '/pool/xmldbdump', '/import_raw_vdi'].includes(name));
  if (!known) {
    // Http_svr answers a path it has no handler for with 404; no task is touched.
    res.writeHead(404, { connection: 'close' }).end('not found');
    return;
  }
  if (faults.drop(name)) {
    req.socket.destroy();
    return;
  }
  let session = sessionOf(req, url);
  const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
  if (!session && basic) {
    const [u, pw] = Buffer.from(basic[1]!, 'base64').toString().split(':');
    session = pool.login(u ?? '', pw ?? '', trusted);
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
    res.writeHead(500, { 'task-id': task, connection: 'close' }).end(injected.code);
    return;
  }
  if (req.method === 'GET' && name === '/export_metadata') {
    // export.ml `metadata_handler`: the whole tar is built first, then sent with its length
    // on an HTTP/1.0-style response that closes the connection; on failure, 500.
    let tar: Uint8Array;
    try {
      tar = exportMetadataRequest(pool, url.searchParams, task);
    } catch (e) {
      finish({ error: asFailure(e) });
      res.writeHead(500, { 'task-id': task, connection: 'close' }).end();
      return;
    }
    finish({ result: '' });
    res
      .writeHead(200, {
        connection: 'close',
        'task-id': task,
        'content-type': 'application/octet-stream',
        'content-length': tar.length,
        'content-disposition': 'attachment; filename="export.xva"',
      })
      .end(tar);
    return;
  }
  if (req.method === 'GET' && name === '/pool/xmldbdump') {
    // pool_db_backup.ml `pull_database_backup_handler`: 200 with keep_alive false and no
    // Content-Length, then the database streamed; the task completes when the writing ends
    // (Xapi_http.with_context), with a failure if it breaks part-way.
    const xml = dumpDb(pool.db, 1);
    const cut = faults.cutAfter(name);
    res.useChunkedEncodingByDefault = false;
    res.sendDate = false;
    res.writeHead(200, { connection: 'close', 'task-id': task, 'content-type': 'text/xml' });
    await stream(res, xml, cut);
    if (cut !== null && cut < xml.length) {
      finish({
        error: new Failure('INTERNAL_ERROR', [
          `Unix.Unix_error(Unix.EPIPE, "write", "") after ${cut} bytes (injected)`,
        ]),
      });
      res.destroy();
      return;
    }
    finish({ result: '' });
    res.end();
    return;
  }
  if (name === '/import_raw_vdi') return importRawVdi(pool, req, res, url, task, finish);
  if (name === '/export_raw_vdi') return exportRawVdi(pool, res, url, task, finish);
  if (req.method === 'PUT' && name === '/import_metadata') {
    // import.ml `metadata_handler`: the 200 (keep_alive false) with the task id goes out
    // first, then the archive is read and imported; the task is completed or failed before
    // the handler returns (Xapi_http.with_context), and only then does the connection close
    // (the handler set `req.close`; http_svr.ml). So the response ends when the import is
    // over, and a task of the caller's is final by then.
    res.writeHead(200, { 'task-id': task, connection: 'close' });
    res.flushHeaders();
    try {
      const body = await readBody(req);
      const refs = await importMetadata(pool, new Uint8Array(body), {
        restore: flag('restore'),
        force: flag('force'),
        dryRun: flag('dry_run'),
      });
      finish({ result: refs });
    } catch (e) {
      finish({ error: asFailure(e) });
    }
    res.end();
    return;
  }
  if (req.method === 'PUT') {
    const body = await readBody(req);
    res.writeHead(200, { 'task-id': task, connection: 'close' }).end();
    setImmediate(() => {
      try {
        restoreDb(pool, body.toString('utf8'), flag('dry_run'));
        finish({ result: '' });
      } catch (e) {
        finish({ error: asFailure(e) });
      }
    });
    return;
  }
}
