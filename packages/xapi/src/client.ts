/**
 * XapiClient: a session on a pool master, its RPC calls, its tasks and its HTTP handlers.
 */
import type http from 'node:http';
import { XapiError } from './errors.js';
import {
  discardBody,
  type Endpoint,
  type Exchange,
  makeEndpoint,
  normaliseFingerprint,
  peerFingerprint,
  readBody,
  send,
  type TlsSettings,
  toXapiError,
  UNTRUSTED_CERT_RE,
} from './http.js';
import { decodeRecordsReply, pickFields } from './project.js';
import { INT_FIELDS, type TaskRecord, type XapiRecordTypes, type XapiRef } from './records.js';
import {
  JsonRpcUnsupported,
  jsonRpcCall,
  type RpcCallOptions,
  type RpcContext,
  type Transport,
  xmlRpcCall,
} from './rpc.js';
import { decodeValue, formatXapiDate, type XmlRpcValue } from './xmlrpc.js';

export interface XapiConnectOptions {
  /** `https://host[:port]` of a pool member (a slave redirects to the master). */
  url?: string;
  /**
   * xapi's local Unix socket on a pool host (`/var/lib/xcp/xapi`), instead of `url`. xapi
   * trusts a login that arrives there as local root whatever its password, as `xe` on the
   * host relies on (`Context.preauth` in ocaml/xapi/xapi_session.ml, login_with_password).
   */
  socketPath?: string;
  username: string;
  password: string;
  /** `auto` (default): JSON-RPC, falling back to XML-RPC when `/jsonrpc` is missing. */
  transport?: 'jsonrpc' | 'xmlrpc' | 'auto';
  tls?: TlsSettings;
  /** Deadline of one RPC call, and the longest silence of a transfer, ms (default 60 000). */
  timeoutMs?: number;
  /** Sent with `session.login_with_password` (default `xsmeta`). */
  originator?: string;
  /** Sockets per host (default 16). */
  maxSockets?: number;
  /** Largest RPC answer or buffered download, bytes (default 256 MiB). */
  maxResponseBytes?: number;
  /** Default wait for the tasks of `callAsync` and of uploads, ms (default 1 hour). */
  taskTimeoutMs?: number;
}

export interface TransferOptions {
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` (idle time of the transfer). */
  timeoutMs?: number;
}

export interface WaitTaskOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export type VdiFormat = 'raw' | 'vhd';

const MAX_MASTER_HOPS = 3;
const MAX_REDIRECTS = 3;

/** Returns the URL of the master named by HOST_IS_SLAVE (an address, maybe with a port). */
function masterUrl(current: URL, address: string): URL {
  const u = new URL(current.href);
  const a = address.trim();
  if (a === '' || /[/?#@\s]/.test(a)) {
    throw new XapiError(
      'HOST_IS_SLAVE',
      [address],
      'HOST_IS_SLAVE without a usable master address',
    );
  }
  if (a.startsWith('[')) u.host = a;
  else if (a.split(':').length === 2) u.host = a;
  else if (a.includes(':')) u.hostname = `[${a}]`;
  else u.hostname = a;
  return u;
}

function redact(err: unknown, secret: string): unknown {
  if (!(err instanceof XapiError) || secret === '') return err;
  const scrub = (s: string): string =>
    s === secret ? '***' : secret.length >= 4 ? s.split(secret).join('***') : s;
  const params = err.params.map(scrub);
  const message = scrub(err.message);
  if (message === err.message && params.every((p, i) => p === err.params[i])) return err;
  return new XapiError(err.code, params, message);
}

function parseBaseUrl(raw: string): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new XapiError('XAPI_INVALID_ARGUMENT', ['url'], 'url is not a valid URL');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new XapiError('XAPI_INVALID_ARGUMENT', ['url'], 'url must be http: or https:');
  }
  if (u.username !== '' || u.password !== '') {
    throw new XapiError(
      'XAPI_INVALID_ARGUMENT',
      ['url'],
      'url must not carry credentials; pass username and password',
    );
  }
  u.pathname = '/';
  u.search = '';
  u.hash = '';
  return u;
}

function positive(n: number | undefined, name: string, dflt: number): number {
  if (n === undefined) return dflt;
  if (!(Number.isFinite(n) && n > 0)) {
    throw new XapiError('XAPI_INVALID_ARGUMENT', [name], `${name} must be a positive number`);
  }
  return n;
}

/** Parses a `task.result` fragment: '' stays '', an XML-RPC `<value>` is decoded, else as is. */
export function parseTaskResult(fragment: string): unknown {
  const t = fragment.trim();
  if (t === '') return '';
  if (!t.startsWith('<')) return fragment;
  return normaliseDates(decodeValue(t));
}

function normaliseDates(v: XmlRpcValue): unknown {
  if (v instanceof Date) return formatXapiDate(v);
  if (Array.isArray(v)) return v.map(normaliseDates);
  if (typeof v === 'object' && !(v instanceof Uint8Array)) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) {
      Object.defineProperty(o, k, {
        value: normaliseDates(v[k]!),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return o;
  }
  return v;
}

/** int fields arrive as strings over XML-RPC: make them numbers (in place). */
function normaliseRecord(cls: string, rec: unknown): void {
  const fields = INT_FIELDS[cls];
  if (fields === undefined || typeof rec !== 'object' || rec === null) return;
  const r = rec as Record<string, unknown>;
  for (const f of fields) {
    const v = r[f];
    if (typeof v === 'string' && /^-?[0-9]{1,19}$/.test(v)) r[f] = Number(v);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new XapiError('XAPI_CANCELLED', ['wait'], 'cancelled'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new XapiError('XAPI_CANCELLED', ['wait'], 'cancelled'));
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A certificate the client does not trust (a pool's self-signed one, mostly): the error gains
 * the certificate's sha256 fingerprint, as `params[1]`, so the caller can say what to pin.
 */
async function withFingerprint(e: unknown, s: ClientState): Promise<unknown> {
  if (
    !(e instanceof XapiError) ||
    e.code !== 'XAPI_TLS' ||
    s.tls?.fingerprint !== undefined ||
    !UNTRUSTED_CERT_RE.test(e.params[0] ?? '')
  )
    return e;
  const fp = await peerFingerprint(s.base, Math.min(s.timeoutMs, 10_000));
  if (fp === null) return e;
  return new XapiError(
    'XAPI_TLS',
    [e.params[0] ?? '', fp],
    `the certificate of ${s.base.host} is not trusted (${e.params[0]}); its sha256 fingerprint is ${fp}: if that is the pool's certificate, pin it (tls.fingerprint)`,
    { cause: e },
  );
}

interface ClientState {
  base: URL;
  socketPath: string | undefined;
  endpoint: Endpoint;
  transport: Transport;
  session: string;
  username: string;
  originator: string;
  tls: TlsSettings | undefined;
  timeoutMs: number;
  maxSockets: number;
  maxResponseBytes: number;
  taskTimeoutMs: number;
}

/** Who asks the pool; kept out of the object's enumerable state. */
type Login = (state: ClientState) => Promise<string>;

export class XapiClient {
  readonly #s: ClientState;
  readonly #login: Login;
  #relogin: Promise<string> | undefined;
  #closed = false;
  #events: boolean | undefined;

  private constructor(state: ClientState, login: Login) {
    this.#s = state;
    this.#login = login;
  }

  /** The current session reference (`OpaqueRef:…`). */
  get sessionRef(): string {
    return this.#s.session;
  }

  /** The master's base URL this client talks to (after any HOST_IS_SLAVE redirect). */
  get url(): string {
    return this.#s.base.href;
  }

  /** The Unix socket this client talks over, if it was connected with `socketPath`. */
  get socketPath(): string | undefined {
    return this.#s.socketPath;
  }

  /** The RPC transport in use. */
  get transport(): Transport {
    return this.#s.transport;
  }

  /**
   * Logs in with `session.login_with_password`. A pool slave answers `HOST_IS_SLAVE [master]`:
   * the client then connects to the master (at most 3 hops).
   */
  static async connect(opts: XapiConnectOptions): Promise<XapiClient> {
    const password = opts.password;
    if (typeof opts.username !== 'string' || typeof password !== 'string') {
      throw new XapiError(
        'XAPI_INVALID_ARGUMENT',
        ['credentials'],
        'username and password are required',
      );
    }
    const want = opts.transport ?? 'auto';
    if (want !== 'auto' && want !== 'jsonrpc' && want !== 'xmlrpc') {
      throw new XapiError(
        'XAPI_INVALID_ARGUMENT',
        ['transport'],
        'transport must be auto, jsonrpc or xmlrpc',
      );
    }
    if (opts.tls?.fingerprint !== undefined) normaliseFingerprint(opts.tls.fingerprint);
    const socketPath = opts.socketPath;
    if ((opts.url === undefined) === (socketPath === undefined) || socketPath === '') {
      throw new XapiError(
        'XAPI_INVALID_ARGUMENT',
        ['url'],
        'give either url or socketPath (a non-empty path), not both',
      );
    }
    const state: ClientState = {
      // Over the socket the host part is only the Host header xapi ignores.
      base: parseBaseUrl(opts.url ?? 'http://localhost/'),
      socketPath,
      endpoint: undefined as unknown as Endpoint,
      transport: want === 'xmlrpc' ? 'xmlrpc' : 'jsonrpc',
      session: '',
      username: opts.username,
      originator: opts.originator ?? 'xsmeta',
      tls: opts.tls,
      timeoutMs: positive(opts.timeoutMs, 'timeoutMs', 60_000),
      maxSockets: positive(opts.maxSockets, 'maxSockets', 16),
      maxResponseBytes: positive(opts.maxResponseBytes, 'maxResponseBytes', 256 * 1024 * 1024),
      taskTimeoutMs: positive(opts.taskTimeoutMs, 'taskTimeoutMs', 60 * 60_000),
    };
    const login: Login = async (s) => {
      const params = [s.username, password, '1.0', s.originator];
      try {
        // The login has the deadline of every call: a silent server must not hang the caller.
        return String(
          await rpc(s, 'session.login_with_password', params, { timeoutMs: s.timeoutMs }),
        );
      } catch (e) {
        throw redact(e, password);
      }
    };
    for (let hop = 0; ; hop++) {
      state.endpoint = makeEndpoint(state.base, {
        tls: state.tls,
        maxSockets: state.maxSockets,
        socketPath: state.socketPath,
      });
      try {
        if (want === 'auto') {
          try {
            state.transport = 'jsonrpc';
            state.session = await login(state);
          } catch (e) {
            if (!(e instanceof JsonRpcUnsupported)) throw e;
            state.transport = 'xmlrpc';
            state.session = await login(state);
          }
        } else {
          state.session = await login(state);
        }
        return new XapiClient(state, login);
      } catch (e) {
        state.endpoint.destroy();
        if (
          e instanceof XapiError &&
          e.code === 'HOST_IS_SLAVE' &&
          hop < MAX_MASTER_HOPS &&
          state.socketPath === undefined
        ) {
          state.base = masterUrl(state.base, e.params[0] ?? '');
          continue;
        }
        throw await withFingerprint(e, state);
      }
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new XapiError('XAPI_CLOSED', [], 'the session was logged out');
  }

  /** Raw RPC with the session prepended; re-logs in once on SESSION_INVALID. */
  async #call(method: string, params: readonly unknown[], opts: RpcCallOptions): Promise<unknown> {
    this.#checkOpen();
    const session = this.#s.session;
    try {
      return await rpc(this.#s, method, [session, ...params], opts);
    } catch (e) {
      if (
        !(e instanceof XapiError) ||
        e.code !== 'SESSION_INVALID' ||
        method.startsWith('session.')
      ) {
        throw e;
      }
    }
    await this.#renew(session);
    return rpc(this.#s, method, [this.#s.session, ...params], opts);
  }

  async #renew(stale: string): Promise<void> {
    if (this.#s.session !== stale) return;
    if (this.#relogin === undefined) {
      this.#relogin = this.#login(this.#s).finally(() => {
        this.#relogin = undefined;
      });
    }
    this.#s.session = await this.#relogin;
  }

  /** Calls `method` with the session ref prepended to `params`. */
  call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return this.#call(method, params, { timeoutMs: this.#s.timeoutMs }) as Promise<T>;
  }

  /**
   * Calls `Async.<method>`, waits for its task, returns the parsed `task.result` (an XML-RPC
   * fragment; a bare ref stays a string), and destroys the task. A failed task throws its
   * `error_info` as an XapiError.
   */
  async callAsync<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    const task = String(await this.call(`Async.${method}`, ...params));
    try {
      return parseTaskResult(await this.waitTask(task, { timeoutMs: this.#s.taskTimeoutMs })) as T;
    } finally {
      await this.#destroyTask(task);
    }
  }

  async #destroyTask(task: XapiRef): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#call('task.destroy', [task], { timeoutMs: this.#s.timeoutMs });
    } catch {
      // best effort: the task may be gone already
    }
  }

  /**
   * Waits until the task leaves `pending`; resolves with its `result` fragment, rejects with
   * its `error_info` (or TASK_CANCELLED). Uses `event.from` on the task class, or polls
   * `task.get_record` when the pool has no events.
   */
  async waitTask(taskRef: string, opts: WaitTaskOptions = {}): Promise<string> {
    const { signal } = opts;
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
    const rpcOpts = (): RpcCallOptions => ({
      signal,
      timeoutMs:
        deadline === undefined
          ? this.#s.timeoutMs
          : Math.max(1, Math.min(this.#s.timeoutMs, deadline - Date.now())),
    });
    const check = (): void => {
      if (signal?.aborted) throw new XapiError('XAPI_CANCELLED', [taskRef], 'task wait cancelled');
      if (deadline !== undefined && Date.now() >= deadline) {
        throw new XapiError('XAPI_TIMEOUT', [taskRef], 'task did not finish in time');
      }
    };
    const fetch = async (): Promise<TaskRecord> =>
      (await this.#call('task.get_record', [taskRef], rpcOpts())) as TaskRecord;

    let rec = await fetch();
    let token = '';
    let delay = 10;
    for (;;) {
      const outcome = taskOutcome(taskRef, rec);
      if (outcome !== undefined) return outcome;
      check();
      if (this.#events !== false) {
        const left = deadline === undefined ? 30_000 : deadline - Date.now();
        // event.from takes a float timeout in seconds; never wait past the deadline
        const waitS = Math.round(Math.max(0.05, Math.min(30, left / 1000)) * 1000) / 1000;
        let reply: { token?: unknown; events?: unknown };
        try {
          reply = (await this.#call('event.from', [['task'], token, waitS], {
            signal,
            timeoutMs: Math.ceil(waitS * 1000) + this.#s.timeoutMs,
          })) as typeof reply;
          this.#events = true;
        } catch (e) {
          if (e instanceof XapiError && isNoEvents(e.code)) {
            this.#events = false;
            continue;
          }
          throw e;
        }
        if (typeof reply?.token !== 'string' || !Array.isArray(reply.events)) {
          throw new XapiError('XAPI_PROTOCOL', ['event.from'], 'malformed event.from answer');
        }
        token = reply.token;
        for (const ev of reply.events as {
          ref?: unknown;
          operation?: unknown;
          snapshot?: unknown;
        }[]) {
          if (ev?.ref !== taskRef) continue;
          if (ev.operation === 'del') {
            throw new XapiError('HANDLE_INVALID', ['task', taskRef], 'the task was destroyed');
          }
          rec =
            typeof ev.snapshot === 'object' && ev.snapshot !== null
              ? (ev.snapshot as TaskRecord)
              : await fetch();
        }
      } else {
        await sleep(
          deadline === undefined ? delay : Math.min(delay, Math.max(1, deadline - Date.now())),
          signal,
        );
        delay = Math.min(delay * 2, 500);
        check();
        rec = await fetch();
      }
    }
  }

  /** `<cls>.get_all_records` as a Map ref -> record (int fields as numbers). */
  async getAllRecords<T>(cls: string): Promise<Map<string, T>> {
    const all = await this.call<Record<string, T>>(`${cls}.get_all_records`);
    if (typeof all !== 'object' || all === null || Array.isArray(all)) {
      throw new XapiError('XAPI_PROTOCOL', [cls], `${cls}.get_all_records did not return a map`);
    }
    const out = new Map<string, T>();
    for (const ref of Object.keys(all)) {
      const rec = all[ref]!;
      normaliseRecord(cls, rec);
      out.set(ref, rec);
    }
    return out;
  }

  /**
   * `<cls>.get_all_records` keeping only `fields` of each record: over JSON-RPC the other
   * fields are skipped while the answer is decoded, never built (project.ts); over XML-RPC
   * the records are decoded whole, then cut down.
   */
  async getAllRecordsFields<C extends keyof XapiRecordTypes, K extends keyof XapiRecordTypes[C]>(
    cls: C,
    fields: readonly (K & string)[],
  ): Promise<Map<XapiRef, Pick<XapiRecordTypes[C], K>>> {
    const all = (await this.#call(`${cls}.get_all_records`, [], {
      timeoutMs: this.#s.timeoutMs,
      decodeJson: (body) => decodeRecordsReply(body, fields),
    })) as Record<string, Record<string, unknown>>;
    if (typeof all !== 'object' || all === null || Array.isArray(all)) {
      throw new XapiError('XAPI_PROTOCOL', [cls], `${cls}.get_all_records did not return a map`);
    }
    const out = new Map<XapiRef, Pick<XapiRecordTypes[C], K>>();
    for (const ref of Object.keys(all)) {
      const rec = pickFields(all[ref]!, fields);
      normaliseRecord(cls, rec);
      out.set(ref, rec as Pick<XapiRecordTypes[C], K>);
    }
    return out;
  }

  /** `<cls>.get_record` (int fields as numbers). */
  async getRecord<T>(cls: string, ref: XapiRef): Promise<T> {
    const rec = await this.call<T>(`${cls}.get_record`, ref);
    normaliseRecord(cls, rec);
    return rec;
  }

  // -------------------------------------------------------------------------------------------
  // HTTP handlers

  #handlerUrl(path: string, query: Record<string, string>, task: XapiRef | undefined): URL {
    const u = new URL(path, this.#s.base);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    u.searchParams.set('session_id', this.#s.session);
    if (task !== undefined) u.searchParams.set('task_id', task);
    return u;
  }

  async #createTask(label: string, signal: AbortSignal | undefined): Promise<XapiRef> {
    const ref = await this.#call('task.create', [label, 'xsmeta HTTP transfer'], {
      signal,
      timeoutMs: this.#s.timeoutMs,
    });
    return String(ref);
  }

  /**
   * The error to report for a failed transfer: the task's own error when the pool recorded
   * one (waiting briefly for it), else `fallback`.
   */
  async #failure(task: XapiRef, fallback: unknown): Promise<unknown> {
    if (fallback instanceof XapiError && fallback.code === 'XAPI_CANCELLED') return fallback;
    const quick = fallback instanceof XapiError && fallback.code === 'XAPI_TIMEOUT';
    try {
      await this.waitTask(task, { timeoutMs: quick ? 1 : 1_500 });
    } catch (e) {
      if (e instanceof XapiError && !e.code.startsWith('XAPI_')) return e;
    }
    return fallback;
  }

  /**
   * A body without Content-Length (xapi streams `/pool/xmldbdump` so, then closes the
   * connection: ocaml/xapi/pool_db_backup.ml, pull_database_backup_handler) ends where the
   * connection ends, also when the pool failed half-way. Only the task's final status says
   * whether it is whole: wait for it; a failed task throws its error.
   */
  async #trustBody(task: XapiRef, opts: TransferOptions): Promise<void> {
    await this.waitTask(task, {
      timeoutMs: this.#s.taskTimeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /** GET or PUT on a handler, following up to 3 redirects (to other pool hosts). */
  async #exchange(
    method: 'GET' | 'PUT',
    first: URL,
    body: Uint8Array | AsyncIterable<Uint8Array> | undefined,
    contentLength: number | undefined,
    opts: TransferOptions,
  ): Promise<{ ex: Exchange; res: http.IncomingMessage }> {
    let url = first;
    for (let hop = 0; ; hop++) {
      const ex = send(this.#s.endpoint, {
        method,
        url,
        headers: body === undefined ? {} : { 'content-type': 'application/octet-stream' },
        body,
        contentLength,
        signal: opts.signal,
        idleMs: opts.timeoutMs ?? this.#s.timeoutMs,
      });
      const res = await ex.response;
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      const replayable = body === undefined || body instanceof Uint8Array;
      if ((status === 301 || status === 302 || status === 307) && location && replayable) {
        await discardBody(ex, res);
        if (hop >= MAX_REDIRECTS) {
          throw new XapiError(
            'XAPI_TRANSPORT',
            ['too many redirects'],
            `${first.pathname}: too many redirects`,
          );
        }
        const next = new URL(location, url);
        // Over the local socket every request reaches this host: a redirect to another
        // host cannot be followed there.
        if (this.#s.socketPath !== undefined && next.host !== url.host) {
          throw new XapiError(
            'XAPI_TRANSPORT',
            ['redirect'],
            `${first.pathname}: redirected to another host, unreachable over the local socket`,
          );
        }
        if (next.protocol !== url.protocol) {
          throw new XapiError(
            'XAPI_PROTOCOL',
            ['redirect'],
            'refusing a redirect that changes protocol',
          );
        }
        for (const k of ['session_id', 'task_id']) {
          const v = first.searchParams.get(k);
          if (v !== null && !next.searchParams.has(k)) next.searchParams.set(k, v);
        }
        url = next;
        continue;
      }
      if (body !== undefined) await ex.sent;
      if (status !== 200) {
        await discardBody(ex, res);
        throw new XapiError(
          'XAPI_TRANSPORT',
          [`HTTP ${status}`],
          `${method} ${first.pathname}: HTTP ${status}`,
        );
      }
      return { ex, res };
    }
  }

  /**
   * GET a handler into memory, with a task of ours for the pool's error report. With
   * `taskOnFailure`, the first request goes without a task (xapi then makes its own:
   * ocaml/xapi/xapi_http.ml, `with_context`), which saves a `task.create` and a
   * `task.destroy` per GET; the body is trusted by its Content-Length. Only when that request
   * fails, or its body has no length, is it sent again with a task of ours, whose error says
   * why.
   */
  async #download(
    path: string,
    query: Record<string, string>,
    opts: TransferOptions,
    taskOnFailure = false,
  ): Promise<Uint8Array> {
    this.#checkOpen();
    if (taskOnFailure) {
      try {
        const { ex, res } = await this.#exchange(
          'GET',
          this.#handlerUrl(path, query, undefined),
          undefined,
          undefined,
          opts,
        );
        if (!closeDelimited(res)) {
          const buf = await readBody(ex, res, this.#s.maxResponseBytes, `GET ${path}`);
          return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
        }
        await discardBody(ex, res);
      } catch (e) {
        if (e instanceof XapiError && (e.code === 'XAPI_CANCELLED' || e.code === 'XAPI_TIMEOUT'))
          throw e;
      }
    }
    const task = await this.#createTask(`xsmeta GET ${path}`, opts.signal);
    try {
      const { ex, res } = await this.#exchange(
        'GET',
        this.#handlerUrl(path, query, task),
        undefined,
        undefined,
        opts,
      );
      const buf = await readBody(ex, res, this.#s.maxResponseBytes, `GET ${path}`);
      if (closeDelimited(res)) await this.#trustBody(task, opts);
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (e) {
      throw await this.#failure(task, e);
    } finally {
      await this.#destroyTask(task);
    }
  }

  /** GET a handler as a stream of chunks; the task lives until the stream ends or is closed. */
  async #downloadStream(
    path: string,
    query: Record<string, string>,
    opts: TransferOptions,
  ): Promise<AsyncIterable<Uint8Array>> {
    this.#checkOpen();
    const task = await this.#createTask(`xsmeta GET ${path}`, opts.signal);
    let ex: Exchange;
    let res: http.IncomingMessage;
    try {
      ({ ex, res } = await this.#exchange(
        'GET',
        this.#handlerUrl(path, query, task),
        undefined,
        undefined,
        opts,
      ));
    } catch (e) {
      const err = await this.#failure(task, e);
      await this.#destroyTask(task);
      throw err;
    }
    const declared = Number(res.headers['content-length']);
    const self = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let total = 0;
      let finished = false;
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          total += chunk.length;
          yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        }
        if (!res.complete || (Number.isFinite(declared) && declared !== total)) {
          throw new XapiError('XAPI_TRANSPORT', ['incomplete'], `GET ${path}: connection dropped`);
        }
        if (closeDelimited(res)) await self.#trustBody(task, opts);
        finished = true;
        ex.done();
      } catch (e) {
        throw await self.#failure(task, toXapiError(e, `GET ${path}`));
      } finally {
        if (!finished)
          ex.fail(new XapiError('XAPI_CANCELLED', [path], `GET ${path}: closed early`));
        await self.#destroyTask(task);
      }
    }
    return chunks();
  }

  /** PUT to a handler with a task of ours, and wait for that task's outcome. */
  async #upload(
    path: string,
    query: Record<string, string>,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    length: number | undefined,
    opts: TransferOptions,
  ): Promise<string> {
    this.#checkOpen();
    if (!(body instanceof Uint8Array) && length === undefined) {
      throw new XapiError(
        'XAPI_INVALID_ARGUMENT',
        ['length'],
        'a streamed upload needs its length',
      );
    }
    const task = await this.#createTask(`xsmeta PUT ${path}`, opts.signal);
    try {
      try {
        const { ex, res } = await this.#exchange(
          'PUT',
          this.#handlerUrl(path, query, task),
          body,
          length,
          opts,
        );
        await discardBody(ex, res);
      } catch (e) {
        throw await this.#failure(task, e);
      }
      return await this.waitTask(task, {
        timeoutMs: this.#s.taskTimeoutMs,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } finally {
      await this.#destroyTask(task);
    }
  }

  /**
   * `GET /export_metadata?uuid=…|ref=…|all=true`: the tar whose first member is `ova.xml`.
   * `exportSnapshots` is sent when given: xapi's handler includes a VM's snapshots unless
   * `export_snapshots=false`, whereas `xe vm-export --metadata` sends false by default
   * (include-snapshots, ocaml/xapi-cli-server/cli_operations.ml; ocaml/xapi/export.ml).
   * `{ all: true }` exports every VM that is not a default template in one tar, under one
   * pass of locks.
   */
  exportMetadata(
    vm: { uuid: string } | { ref: string } | { all: true },
    opts: TransferOptions & { exportSnapshots?: boolean; includeDom0?: boolean } = {},
  ): Promise<Uint8Array> {
    // export.ml `metadata_handler` sends the whole tar with its Content-Length, or HTTP 500
    return this.#download('/export_metadata', exportQuery(vm, opts), opts, true);
  }

  /**
   * `exportMetadata` as a stream of chunks (consume it to the end, or break out), with a task
   * of ours: how a large `all=true` export goes to a file instead of memory.
   */
  exportMetadataStream(
    vm: { uuid: string } | { ref: string } | { all: true },
    opts: TransferOptions & { exportSnapshots?: boolean; includeDom0?: boolean } = {},
  ): Promise<AsyncIterable<Uint8Array>> {
    return this.#downloadStream('/export_metadata', exportQuery(vm, opts), opts);
  }

  /**
   * `PUT /import_metadata?restore=true&force=…&dry_run=…`: imports a metadata export, keeping
   * uuids (the CLI's `--preserve`). Resolves with the refs of the VMs created (none on a dry
   * run); rejects with the task's error (e.g. VDI_LOCATION_MISSING, DUPLICATE_MAC_SEED).
   */
  async importMetadata(
    body: Uint8Array,
    opts: { force?: boolean; dryRun?: boolean } & TransferOptions,
  ): Promise<string[]> {
    const query = {
      restore: 'true',
      force: opts.force ? 'true' : 'false',
      dry_run: opts.dryRun ? 'true' : 'false',
    };
    const result = parseTaskResult(
      await this.#upload('/import_metadata', query, body, undefined, opts),
    );
    if (result === '') return [];
    if (typeof result === 'string') return result.split(/[\s,]+/).filter((r) => r !== '');
    if (Array.isArray(result) && result.every((r) => typeof r === 'string'))
      return result as string[];
    throw new XapiError(
      'XAPI_PROTOCOL',
      ['import result'],
      'import_metadata task result is not a list of refs',
    );
  }

  /** `GET /pool/xmldbdump`: the pool database as XML. */
  dumpDatabase(opts: TransferOptions = {}): Promise<Uint8Array> {
    return this.#download('/pool/xmldbdump', {}, opts);
  }

  /** `GET /pool/xmldbdump` as a stream of chunks (consume it to the end, or break out). */
  dumpDatabaseStream(opts: TransferOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    return this.#downloadStream('/pool/xmldbdump', {}, opts);
  }

  /** `PUT /pool/xmldbdump[?dry_run=true]`: restores the pool database. */
  async restoreDatabase(
    body: Uint8Array,
    opts: { dryRun: boolean } & TransferOptions,
  ): Promise<void> {
    await this.#upload(
      '/pool/xmldbdump',
      opts.dryRun ? { dry_run: 'true' } : {},
      body,
      undefined,
      opts,
    );
  }

  /** `GET /export_raw_vdi?vdi=…&format=…`: the disk's content as a stream of chunks. */
  exportRawVdi(
    vdiRef: XapiRef,
    opts: { format?: VdiFormat } & TransferOptions = {},
  ): Promise<AsyncIterable<Uint8Array>> {
    return this.#downloadStream(
      '/export_raw_vdi',
      { vdi: vdiRef, format: opts.format ?? 'raw' },
      opts,
    );
  }

  /** `PUT /import_raw_vdi?vdi=…&format=…`: writes the disk; a stream needs `length`. */
  async importRawVdi(
    vdiRef: XapiRef,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    opts: { format?: VdiFormat; length?: number } & TransferOptions = {},
  ): Promise<void> {
    const query = { vdi: vdiRef, format: opts.format ?? 'raw' };
    await this.#upload('/import_raw_vdi', query, data, opts.length, opts);
  }

  /** `session.logout`, then closes the sockets. Idempotent; never throws. */
  async logout(): Promise<void> {
    if (this.#closed) return;
    try {
      await rpc(this.#s, 'session.logout', [this.#s.session], {
        timeoutMs: Math.min(this.#s.timeoutMs, 10_000),
      });
    } catch {
      // the session dies with the sockets anyway
    } finally {
      this.#closed = true;
      this.#s.endpoint.destroy();
    }
  }
}

/** The query of `GET /export_metadata` (ocaml/xapi/export.ml `metadata_handler`). */
function exportQuery(
  vm: { uuid: string } | { ref: string } | { all: true },
  opts: { exportSnapshots?: boolean; includeDom0?: boolean },
): Record<string, string> {
  const query: Record<string, string> =
    'uuid' in vm ? { uuid: vm.uuid } : 'ref' in vm ? { ref: vm.ref } : { all: 'true' };
  if (opts.exportSnapshots !== undefined)
    query.export_snapshots = opts.exportSnapshots ? 'true' : 'false';
  // with all=true the handler includes the control domain unless include_dom0=false
  if (opts.includeDom0 !== undefined) query.include_dom0 = opts.includeDom0 ? 'true' : 'false';
  return query;
}

/** A response body that ends with the connection (neither Content-Length nor chunked). */
function closeDelimited(res: http.IncomingMessage): boolean {
  return (
    res.headers['content-length'] === undefined &&
    !/chunked/i.test(String(res.headers['transfer-encoding'] ?? ''))
  );
}

function isNoEvents(code: string): boolean {
  return code === 'MESSAGE_METHOD_UNKNOWN' || code === 'MESSAGE_PARAMETER_COUNT_MISMATCH';
}

/** The fragment of a finished task, a thrown error for a failed one, undefined while pending. */
function taskOutcome(ref: XapiRef, rec: TaskRecord): string | undefined {
  if (typeof rec !== 'object' || rec === null) {
    throw new XapiError('XAPI_PROTOCOL', ['task'], 'malformed task record');
  }
  switch (rec.status) {
    case 'success':
      return typeof rec.result === 'string' ? rec.result : '';
    case 'failure': {
      const info = Array.isArray(rec.error_info) ? rec.error_info.map(String) : [];
      const [code, ...params] = info;
      throw new XapiError(code ?? 'INTERNAL_ERROR', params);
    }
    case 'cancelled': {
      const info = Array.isArray(rec.error_info) ? rec.error_info.map(String) : [];
      const [code, ...params] = info;
      throw code ? new XapiError(code, params) : new XapiError('TASK_CANCELLED', [ref]);
    }
    case 'pending':
    case 'cancelling':
      return undefined;
    default:
      throw new XapiError('XAPI_PROTOCOL', ['task status'], 'unknown task status');
  }
}

function rpc(
  state: ClientState,
  method: string,
  params: readonly unknown[],
  opts: RpcCallOptions,
): Promise<unknown> {
  const ctx: RpcContext = {
    endpoint: state.endpoint,
    base: state.base,
    maxResponseBytes: state.maxResponseBytes,
  };
  return state.transport === 'jsonrpc'
    ? jsonRpcCall(ctx, method, params, opts)
    : xmlRpcCall(ctx, method, params, opts);
}
