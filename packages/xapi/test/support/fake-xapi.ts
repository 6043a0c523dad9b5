// Over 400 lines on purpose: one fake XAPI whose RPC methods, tasks, event.from and HTTP
// handlers share the same sessions, tasks and records; split, each part would reach into the others.
/**
 * A tiny XAPI for the connector's own tests: real node:http(s) on 127.0.0.1, both RPC
 * transports, sessions, tasks, event.from, and the HTTP handlers the client exercises. It is
 * deliberately small; the full simulated pool lives in apps/xapi-sim.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import {
  decodeMethodCall,
  encodeMethodResponse,
  encodeValue,
  type XmlRpcValue,
} from '../../src/index.js';

export interface FakeOptions {
  password?: string;
  /** Answer every login with HOST_IS_SLAVE [masterAddress]. */
  slaveOf?: string;
  /** `/jsonrpc` answers 404 (an old host). */
  noJsonRpc?: boolean;
  /** `/jsonrpc` answers with this content-type. */
  jsonContentType?: string;
  /** Answer JSON-RPC errors in the v1 shape. */
  jsonV1Errors?: boolean;
  /** event.from is unknown (forces polling). */
  noEvents?: boolean;
  tls?: { key: string; cert: string };
  /** The login failure message repeats the password (a careless server). */
  echoPassword?: boolean;
  /** GET /pool/xmldbdump first answers 302 to itself, without session_id and task_id. */
  redirectDump?: boolean;
  /**
   * Listen on this Unix socket instead of TCP; a login arriving there is trusted whatever its
   * password, as xapi's `/var/lib/xcp/xapi` is (ocaml/xapi/xapi_session.ml, Context.preauth).
   */
  socketPath?: string;
  /**
   * GET /pool/xmldbdump answers as xapi's pull_database_backup_handler does
   * (ocaml/xapi/pool_db_backup.ml): 200, `Connection: close`, no Content-Length, then the body.
   */
  streamDump?: boolean;
}

interface Task {
  uuid: string;
  name_label: string;
  name_description: string;
  status: 'pending' | 'success' | 'failure' | 'cancelling' | 'cancelled';
  progress: number;
  result: string;
  error_info: string[];
  created: Date;
  finished: Date;
  other_config: Record<string, string>;
}

class Fail extends Error {
  constructor(readonly desc: string[]) {
    super(desc[0]);
  }
}

type Handler = (params: XmlRpcValue[]) => unknown;

export interface RequestLog {
  method: string;
  url: string;
  rpc?: string;
  /** Query without session_id. */
  query: Record<string, string>;
}

export class FakeXapi {
  readonly sessions = new Set<string>();
  readonly tasks = new Map<string, Task>();
  readonly log: RequestLog[] = [];
  /** Bodies received by PUT handlers, by path. */
  readonly uploads = new Map<string, Buffer>();
  readonly vms = new Map<string, Record<string, XmlRpcValue>>();
  readonly rawVdis = new Map<string, Buffer>();
  database: Buffer = Buffer.from('<database><manifest/></database>');
  /** export_raw_vdi sends half the declared body, then drops the connection. */
  truncateRaw = false;
  /** export_raw_vdi sends the head and a first chunk, then goes silent. */
  stallRaw = false;
  /** With streamDump: send this many bytes of the dump, close, and fail the task. */
  cutDumpAt: number | undefined;
  /**
   * A host in emergency mode: every JSON-RPC call is answered as api_server.ml answers it then
   * (`{"jsonrpc":"2.0","error":["HOST_STILL_BOOTING"],"id":0}`).
   */
  emergency = false;
  /** Close the next request that arrives on an already used keep-alive socket, unanswered. */
  dropReusedOnce = false;
  private usedSockets = new WeakSet<object>();
  /** Extra methods, by name. */
  readonly methods = new Map<string, Handler>();
  private eventId = 0;
  private events: { id: number; ref: string; operation: string; snapshot?: unknown }[] = [];
  private waiters = new Set<() => void>();
  /**
   * The work behind a task (an Async.* call, an upload), done when the client first waits for
   * it: an event.from that would block, or a second task.get_record. The client thus always
   * sees the task pending once and takes the same path every run; no timer races a reply.
   */
  private readonly work = new Map<string, () => void>();
  private readonly looked = new Set<string>();
  private server!: http.Server;
  url = '';
  port = 0;
  /** TCP connections accepted, and the most open at once. */
  connections = 0;
  peakOpen = 0;
  private open = 0;

  constructor(readonly opts: FakeOptions = {}) {
    for (let i = 0; i < 3; i++) {
      const ref = `OpaqueRef:${randomUUID()}`;
      this.vms.set(ref, {
        uuid: randomUUID(),
        name_label: `vm${i}`,
        is_a_template: false,
        is_control_domain: i === 0,
        power_state: 'Halted',
        memory_static_max: '4294967296',
        VCPUs_max: '2',
        other_config: {},
        VBDs: [],
      });
    }
  }

  async start(): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res).catch((e: unknown) => {
        res.destroy(e instanceof Error ? e : new Error(String(e)));
      });
    };
    this.server = this.opts.tls
      ? https.createServer({ key: this.opts.tls.key, cert: this.opts.tls.cert }, handler)
      : http.createServer(handler);
    this.server.on('connection', (socket) => {
      this.connections++;
      this.open++;
      this.peakOpen = Math.max(this.peakOpen, this.open);
      socket.on('close', () => this.open--);
    });
    const socketPath = this.opts.socketPath;
    if (socketPath !== undefined) {
      await new Promise<void>((resolve) => this.server.listen(socketPath, resolve));
      return this;
    }
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `${this.opts.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const w of this.waiters) w();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  rpcCalls(): string[] {
    return this.log.filter((l) => l.rpc !== undefined).map((l) => l.rpc!);
  }

  // -------------------------------------------------------------------------------------------
  // tasks and events

  createTask(label: string): string {
    const ref = `OpaqueRef:${randomUUID()}`;
    this.tasks.set(ref, {
      uuid: randomUUID(),
      name_label: label,
      name_description: '',
      status: 'pending',
      progress: 0,
      result: '',
      error_info: [],
      created: new Date(),
      finished: new Date(0),
      other_config: {},
    });
    this.emit(ref, 'add');
    return ref;
  }

  finishTask(ref: string, outcome: { result?: string; error?: string[] }): void {
    const t = this.tasks.get(ref);
    if (t?.status !== 'pending') return;
    t.status = outcome.error ? 'failure' : 'success';
    t.result = outcome.result ?? '';
    t.error_info = outcome.error ?? [];
    t.progress = 1;
    t.finished = new Date();
    this.emit(ref, 'mod');
  }

  private later(task: string, work: () => void): void {
    this.work.set(task, work);
  }

  private doWork(task?: string): void {
    for (const [t, w] of [...this.work]) {
      if (task !== undefined && t !== task) continue;
      this.work.delete(t);
      w();
    }
  }

  private emit(ref: string, operation: string): void {
    const t = this.tasks.get(ref);
    this.events.push({ id: ++this.eventId, ref, operation, ...(t ? { snapshot: { ...t } } : {}) });
    if (this.events.length > 1000) this.events.splice(0, 500);
    for (const w of this.waiters) w();
  }

  private async eventFrom(classes: XmlRpcValue, token: string, timeout: number): Promise<unknown> {
    if (!Array.isArray(classes) || !classes.includes('task'))
      throw new Fail(['EVENT_SUBSCRIPTION_PARSE_FAILURE']);
    const from = token === '' ? -1 : Number(token);
    const pick = () =>
      from < 0
        ? [...this.tasks.entries()].map(([ref, t]) => ({
            id: String(this.eventId),
            timestamp: '0',
            class: 'task',
            operation: 'add',
            ref,
            snapshot: t,
          }))
        : this.events
            .filter((e) => e.id > from)
            .map((e) => ({
              id: String(e.id),
              timestamp: '0',
              class: 'task',
              operation: e.operation,
              ref: e.ref,
              ...(e.snapshot ? { snapshot: e.snapshot } : {}),
            }));
    let found = pick();
    if (found.length === 0 && from >= 0 && this.work.size > 0) {
      this.doWork();
      found = pick();
    }
    if (found.length === 0 && from >= 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, timeout * 1000);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        const w = (): void => {
          this.waiters.delete(w);
          done();
        };
        this.waiters.add(w);
      });
      found = pick();
    }
    return { events: found, valid_ref_counts: {}, token: String(this.eventId) };
  }

  // -------------------------------------------------------------------------------------------
  // RPC

  private async dispatch(method: string, params: XmlRpcValue[]): Promise<unknown> {
    if (method === 'session.login_with_password') {
      if (this.opts.slaveOf) throw new Fail(['HOST_IS_SLAVE', this.opts.slaveOf]);
      const [user, pw] = params;
      const trusted = this.opts.socketPath !== undefined;
      if (!trusted && (user !== 'root' || pw !== (this.opts.password ?? 'secret'))) {
        const why = this.opts.echoPassword
          ? `wrong password ${String(pw)}`
          : 'Authentication failure';
        throw new Fail(['SESSION_AUTHENTICATION_FAILED', String(user), why]);
      }
      const ref = `OpaqueRef:${randomUUID()}`;
      this.sessions.add(ref);
      return ref;
    }
    const session = String(params[0] ?? '');
    if (!this.sessions.has(session)) throw new Fail(['SESSION_INVALID', session]);
    const args = params.slice(1);
    const extra = this.methods.get(method);
    if (extra) return extra(args);
    switch (method) {
      case 'session.logout':
        this.sessions.delete(session);
        return '';
      case 'VM.get_all_records':
        return Object.fromEntries(this.vms);
      case 'VM.get_record': {
        const vm = this.vms.get(String(args[0]));
        if (!vm) throw new Fail(['HANDLE_INVALID', 'VM', String(args[0])]);
        return vm;
      }
      case 'task.create':
        return this.createTask(String(args[0]));
      case 'task.get_record': {
        const ref = String(args[0]);
        if (this.work.has(ref)) {
          if (this.looked.has(ref)) this.doWork(ref);
          else this.looked.add(ref);
        }
        const t = this.tasks.get(ref);
        if (!t) throw new Fail(['HANDLE_INVALID', 'task', String(args[0])]);
        return t;
      }
      case 'task.destroy': {
        const ref = String(args[0]);
        if (!this.tasks.delete(ref)) throw new Fail(['HANDLE_INVALID', 'task', ref]);
        this.emit(ref, 'del');
        return '';
      }
      case 'event.from':
        if (this.opts.noEvents) throw new Fail(['MESSAGE_METHOD_UNKNOWN', method]);
        return this.eventFrom(args[0]!, String(args[1]), Number(args[2]));
      case 'Async.VM.clone': {
        const vm = this.vms.get(String(args[0]));
        if (!vm) throw new Fail(['HANDLE_INVALID', 'VM', String(args[0])]);
        const task = this.createTask('Async.VM.clone');
        const ref = `OpaqueRef:${randomUUID()}`;
        this.later(task, () => {
          this.vms.set(ref, { ...vm, name_label: String(args[1]) });
          this.finishTask(task, { result: `<value>${ref}</value>` });
        });
        return task;
      }
      case 'Async.VM.start': {
        const task = this.createTask('Async.VM.start');
        this.later(task, () =>
          this.finishTask(task, {
            error: ['VM_BAD_POWER_STATE', String(args[0]), 'halted', 'running'],
          }),
        );
        return task;
      }
      case 'test.sleep':
        // unref: a long sleep left behind by a test that timed out keeps nothing alive.
        await new Promise((r) => setTimeout(r, Number(args[0])).unref());
        return 'slept';
      case 'test.echo':
        return args;
      default:
        throw new Fail(['MESSAGE_METHOD_UNKNOWN', method]);
    }
  }

  private async readAll(req: http.IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.usedSockets.has(req.socket) && this.dropReusedOnce) {
      this.dropReusedOnce = false;
      req.socket.destroy();
      return;
    }
    this.usedSockets.add(req.socket);
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams);
    delete query.session_id;
    const entry: RequestLog = { method: req.method ?? '', url: url.pathname, query };
    this.log.push(entry);
    if (req.method === 'POST' && url.pathname === '/jsonrpc') {
      const body = JSON.parse((await this.readAll(req)).toString('utf8')) as {
        method: string;
        params: XmlRpcValue[];
        id: number;
      };
      entry.rpc = body.method;
      if (this.opts.noJsonRpc) {
        res.writeHead(404, { 'content-type': 'text/html' }).end('<html>not found</html>');
        return;
      }
      if (body.method === 'test.drop') {
        req.socket.destroy();
        return;
      }
      if (this.emergency) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', error: ['HOST_STILL_BOOTING'], id: 0 }));
        return;
      }
      let reply: unknown;
      try {
        const result = await this.dispatch(body.method, body.params);
        reply = { jsonrpc: '2.0', result: jsonify(result), id: body.id };
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        reply = this.opts.jsonV1Errors
          ? { result: null, error: e.desc, id: body.id }
          : {
              jsonrpc: '2.0',
              error: { code: 1, message: e.desc[0], data: e.desc.slice(1) },
              id: body.id,
            };
      }
      res.writeHead(200, { 'content-type': this.opts.jsonContentType ?? 'application/json' });
      res.end(JSON.stringify(reply));
      return;
    }
    if (req.method === 'POST' && (url.pathname === '/' || url.pathname === '/RPC2')) {
      const call = decodeMethodCall((await this.readAll(req)).toString('utf8'));
      entry.rpc = call.method;
      if (call.method === 'test.drop') {
        req.socket.destroy();
        return;
      }
      let value: XmlRpcValue;
      try {
        const result = await this.dispatch(call.method, call.params);
        value = { Status: 'Success', Value: xmlify(result) };
      } catch (e) {
        if (!(e instanceof Fail)) throw e;
        value = { Status: 'Failure', ErrorDescription: e.desc };
      }
      res.writeHead(200, { 'content-type': 'text/xml' }).end(encodeMethodResponse(value));
      return;
    }
    // HTTP handlers
    const session = url.searchParams.get('session_id') ?? '';
    const task = url.searchParams.get('task_id') ?? undefined;
    if (!this.sessions.has(session)) {
      await this.readAll(req);
      res.writeHead(403).end();
      return;
    }
    const fail = (code: number, desc: string[]): void => {
      if (task) this.finishTask(task, { error: desc });
      res.writeHead(code).end();
    };
    if (req.method === 'GET' && url.pathname === '/export_metadata') {
      const uuid = url.searchParams.get('uuid');
      const found = [...this.vms.entries()].find(
        ([ref, vm]) => vm.uuid === uuid || ref === url.searchParams.get('ref'),
      );
      if (!found) {
        fail(404, ['UUID_INVALID', 'VM', uuid ?? '']);
        return;
      }
      const ova = encodeValue({
        version: { export_vsn: '2' },
        objects: [{ class: 'VM', id: 'Ref:0', snapshot: found[1] }],
      });
      const body: Buffer = Buffer.from(ova);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': body.length,
      });
      res.end(body);
      if (task) this.finishTask(task, {});
      return;
    }
    if (
      req.method === 'GET' &&
      url.pathname === '/pool/xmldbdump' &&
      this.opts.redirectDump &&
      url.searchParams.get('hop') !== '1'
    ) {
      res.writeHead(302, { location: '/pool/xmldbdump?hop=1' }).end();
      return;
    }
    if (req.method === 'GET' && url.pathname === '/pool/xmldbdump' && this.opts.streamDump) {
      // Written on the socket as xapi does: no Content-Length, no chunking, the end of the
      // body is the end of the connection; the task says whether it was all sent.
      const cut = this.cutDumpAt;
      const body = cut === undefined ? this.database : this.database.subarray(0, cut);
      const socket = req.socket;
      socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/xml\r\n\r\n');
      socket.end(body, () => {
        // The task ends after the connection: a client must wait for it.
        setImmediate(() => {
          if (!task) return;
          if (cut === undefined) this.finishTask(task, {});
          else this.finishTask(task, { error: ['INTERNAL_ERROR', 'database dump cut'] });
        });
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/pool/xmldbdump') {
      res.writeHead(200, { 'content-type': 'text/xml', 'content-length': this.database.length });
      res.end(this.database);
      if (task) this.finishTask(task, {});
      return;
    }
    if (req.method === 'PUT' && url.pathname === '/pool/xmldbdump') {
      if (req.headers['content-length'] === undefined) {
        fail(411, ['INTERNAL_ERROR', 'no content-length']);
        return;
      }
      const body = await this.readAll(req);
      this.uploads.set(url.pathname, body);
      res.writeHead(200).end();
      if (!/schema_major_vsn" value="5"/.test(body.toString())) {
        if (task) this.finishTask(task, { error: ['RESTORE_INCOMPATIBLE_VERSION'] });
        return;
      }
      if (url.searchParams.get('dry_run') !== 'true') this.database = body;
      if (task) this.finishTask(task, {});
      return;
    }
    if (req.method === 'PUT' && url.pathname === '/import_metadata') {
      // xapi answers 200 with a task-id header first, then works
      res.writeHead(200, { 'task-id': task ?? '' });
      const body = await this.readAll(req);
      this.uploads.set(url.pathname, body);
      res.end();
      if (!task) return;
      this.later(task, () => {
        const text = body.toString();
        if (text.includes('MISSING')) {
          this.finishTask(task, { error: ['VDI_LOCATION_MISSING', 'OpaqueRef:sr', 'loc'] });
          return;
        }
        if (url.searchParams.get('dry_run') === 'true') {
          this.finishTask(task, { result: encodeValue([]) });
          return;
        }
        const refs = [`OpaqueRef:${randomUUID()}`, `OpaqueRef:${randomUUID()}`];
        this.finishTask(task, { result: encodeValue(refs) });
      });
      return;
    }
    if (req.method === 'GET' && url.pathname === '/export_raw_vdi') {
      const data = this.rawVdis.get(url.searchParams.get('vdi') ?? '');
      if (!data) {
        fail(404, ['HANDLE_INVALID', 'VDI', url.searchParams.get('vdi') ?? '']);
        return;
      }
      if (this.stallRaw) {
        res.writeHead(200, { 'content-length': data.length });
        res.write(data.subarray(0, 1000));
        return;
      }
      if (this.truncateRaw) {
        res.writeHead(200, { 'content-length': data.length });
        res.write(data.subarray(0, data.length >> 1));
        setTimeout(() => res.destroy(), 10);
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': data.length,
      });
      // in pieces, to exercise streaming
      for (let off = 0; off < data.length; off += 65536) {
        if (!res.write(data.subarray(off, off + 65536)))
          await new Promise((r) => res.once('drain', r));
      }
      res.end();
      if (task) this.finishTask(task, {});
      return;
    }
    if (req.method === 'PUT' && url.pathname === '/import_raw_vdi') {
      const vdi = url.searchParams.get('vdi') ?? '';
      if (!this.rawVdis.has(vdi)) {
        req.resume();
        fail(404, ['HANDLE_INVALID', 'VDI', vdi]);
        return;
      }
      const body = await this.readAll(req);
      this.rawVdis.set(vdi, body);
      res.writeHead(200).end();
      if (task) this.finishTask(task, {});
      return;
    }
    res.writeHead(404).end();
  }
}

/** JSON view of a value: Dates as xapi strings, as xapi's JSON-RPC does. */
function jsonify(v: unknown): unknown {
  if (v instanceof Date)
    return v
      .toISOString()
      .replace(/[-]/g, '')
      .replace(/\.\d+Z$/, 'Z');
  if (Array.isArray(v)) return v.map(jsonify);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonify(x)]));
  }
  return v;
}

/** XML-RPC view: numbers as xapi writes int64 (strings), except floats. */
function xmlify(v: unknown): XmlRpcValue {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v;
  if (Array.isArray(v)) return v.map(xmlify);
  if (v instanceof Date || v instanceof Uint8Array) return v;
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, xmlify(x)]));
  }
  return v as XmlRpcValue;
}
