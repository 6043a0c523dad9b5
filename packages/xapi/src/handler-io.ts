/**
 * How a transfer talks to one of xapi's HTTP handlers: the session (and a task of ours) in the
 * query, redirects to the host holding the resource, a GET read into memory or streamed, a PUT
 * whose outcome is its task's, and the pool's own error for a failed transfer. The handlers
 * themselves are `transfers.ts`.
 */
import type http from 'node:http';
import { XapiError } from './errors.js';
import {
  bodyFault,
  closeDelimited,
  discardBody,
  type Exchange,
  readBody,
  send,
  toXapiError,
} from './http.js';
import type { XapiRef } from './records.js';
import type { Session } from './session.js';
import type { Tasks } from './tasks.js';

export interface TransferOptions {
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` (idle time of the transfer). */
  timeoutMs?: number;
}

const MAX_REDIRECTS = 3;

export class HandlerIo {
  readonly #session: Session;
  readonly #tasks: Tasks;

  constructor(session: Session, tasks: Tasks) {
    this.#session = session;
    this.#tasks = tasks;
  }

  /**
   * GET a handler into memory, with a task of ours for the pool's error report. With
   * `taskOnFailure`, the first request goes without a task (xapi then makes its own:
   * ocaml/xapi/xapi_http.ml, `with_context`), which saves a `task.create` and a
   * `task.destroy` per GET; the body is trusted by its Content-Length. Only when that request
   * fails, or its body has no length, is it sent again with a task of ours, whose error says
   * why.
   */
  async download(
    path: string,
    query: Record<string, string>,
    opts: TransferOptions,
    taskOnFailure = false,
  ): Promise<Uint8Array> {
    this.#session.checkOpen();
    const max = this.#session.settings.maxResponseBytes;
    if (taskOnFailure) {
      try {
        const { ex, res } = await this.#exchange(
          'GET',
          this.#url(path, query),
          undefined,
          undefined,
          opts,
        );
        if (!closeDelimited(res)) return bytes(await readBody(ex, res, max, `GET ${path}`));
        await discardBody(ex, res);
      } catch (e) {
        if (e instanceof XapiError && (e.code === 'XAPI_CANCELLED' || e.code === 'XAPI_TIMEOUT'))
          throw e;
      }
    }
    const { task, ex, res } = await this.#openGet(path, query, opts);
    try {
      const buf = await readBody(ex, res, max, `GET ${path}`);
      if (closeDelimited(res)) await this.#awaitTask(task, opts);
      return bytes(buf);
    } catch (e) {
      throw await this.#failure(task, e);
    } finally {
      await this.#tasks.destroy(task);
    }
  }

  /** GET a handler as a stream of chunks; the task lives until the stream ends or is closed. */
  async downloadStream(
    path: string,
    query: Record<string, string>,
    opts: TransferOptions,
  ): Promise<AsyncIterable<Uint8Array>> {
    this.#session.checkOpen();
    const { task, ex, res } = await this.#openGet(path, query, opts);
    const self = this;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      let total = 0;
      let finished = false;
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          total += chunk.length;
          yield bytes(chunk);
        }
        const broken = bodyFault(res, total, `GET ${path}`);
        if (broken !== undefined) throw broken;
        if (closeDelimited(res)) await self.#awaitTask(task, opts);
        finished = true;
        ex.done();
      } catch (e) {
        throw await self.#failure(task, toXapiError(e, `GET ${path}`));
      } finally {
        if (!finished)
          ex.fail(new XapiError('XAPI_CANCELLED', [path], `GET ${path}: closed early`));
        await self.#tasks.destroy(task);
      }
    }
    return chunks();
  }

  /** PUT to a handler with a task of ours, and wait for that task's outcome. */
  async upload(
    path: string,
    query: Record<string, string>,
    body: Uint8Array | AsyncIterable<Uint8Array>,
    length: number | undefined,
    opts: TransferOptions,
  ): Promise<string> {
    this.#session.checkOpen();
    if (!(body instanceof Uint8Array) && length === undefined) {
      throw new XapiError(
        'XAPI_INVALID_ARGUMENT',
        ['length'],
        'a streamed upload needs its length',
      );
    }
    const task = await this.#createTask('PUT', path, opts);
    try {
      try {
        const url = this.#url(path, query, task);
        const { ex, res } = await this.#exchange('PUT', url, body, length, opts);
        await discardBody(ex, res);
      } catch (e) {
        throw await this.#failure(task, e);
      }
      return await this.#awaitTask(task, opts);
    } finally {
      await this.#tasks.destroy(task);
    }
  }

  /** The handler's URL: the query, the session, and the task when there is one. */
  #url(path: string, query: Record<string, string>, task?: XapiRef): URL {
    const u = new URL(path, this.#session.base);
    for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    u.searchParams.set('session_id', this.#session.ref);
    if (task !== undefined) u.searchParams.set('task_id', task);
    return u;
  }

  #createTask(method: string, path: string, opts: TransferOptions): Promise<XapiRef> {
    return this.#tasks.create(`xsmeta ${method} ${path}`, 'xsmeta HTTP transfer', opts.signal);
  }

  /** A GET with a task of ours, up to its response head; on failure the task is gone. */
  async #openGet(
    path: string,
    query: Record<string, string>,
    opts: TransferOptions,
  ): Promise<{ task: XapiRef; ex: Exchange; res: http.IncomingMessage }> {
    const task = await this.#createTask('GET', path, opts);
    try {
      const url = this.#url(path, query, task);
      return { task, ...(await this.#exchange('GET', url, undefined, undefined, opts)) };
    } catch (e) {
      const err = await this.#failure(task, e);
      await this.#tasks.destroy(task);
      throw err;
    }
  }

  /**
   * Waits for a transfer's task (the client's `taskTimeoutMs`). A body without Content-Length
   * (xapi streams `/pool/xmldbdump` so, then closes the connection:
   * ocaml/xapi/pool_db_backup.ml, pull_database_backup_handler) ends where the connection
   * ends, also when the pool failed half-way: only the task's final status says whether it is
   * whole. A failed task throws its error.
   */
  #awaitTask(task: XapiRef, opts: TransferOptions): Promise<string> {
    return this.#tasks.wait(task, {
      timeoutMs: this.#session.settings.taskTimeoutMs,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  /**
   * The error to report for a failed transfer: the task's own error when the pool recorded
   * one (waiting briefly for it), else `fallback`.
   */
  async #failure(task: XapiRef, fallback: unknown): Promise<unknown> {
    if (fallback instanceof XapiError && fallback.code === 'XAPI_CANCELLED') return fallback;
    const quick = fallback instanceof XapiError && fallback.code === 'XAPI_TIMEOUT';
    try {
      await this.#tasks.wait(task, { timeoutMs: quick ? 1 : 1_500 });
    } catch (e) {
      if (e instanceof XapiError && !e.code.startsWith('XAPI_')) return e;
    }
    return fallback;
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
      const ex = send(this.#session.endpoint, {
        method,
        url,
        headers: body === undefined ? {} : { 'content-type': 'application/octet-stream' },
        body,
        contentLength,
        signal: opts.signal,
        idleMs: opts.timeoutMs ?? this.#session.settings.timeoutMs,
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
        url = this.#redirect(first, url, location);
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

  /** Where a redirect leads, keeping the session and task of the first request. */
  #redirect(first: URL, url: URL, location: string): URL {
    const next = new URL(location, url);
    // Over the local socket every request reaches this host: a redirect to another
    // host cannot be followed there.
    if (this.#session.settings.socketPath !== undefined && next.host !== url.host) {
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
    return next;
  }
}

function bytes(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
