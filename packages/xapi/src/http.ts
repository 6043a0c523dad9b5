/**
 * One HTTP exchange with a pool host: the request (deadline, idle timeout, cancellation, a
 * body written with back-pressure), the response head, bounded body reads, and the mapping of
 * Node's errors onto {@link XapiError} codes. Nothing here ever puts a query string (it carries
 * the session id) or a request body (it may carry the password) into an error. Where requests
 * go (agents, TLS, the local socket) is `endpoint.ts`.
 */
import http from 'node:http';
import { type Endpoint, httpsModule } from './endpoint.js';
import { XapiError } from './errors.js';

const TLS_ERROR_RE = /CERT|SSL|TLS|SELF_SIGNED|VERIFY|ISSUER|HOSTNAME|ALTNAME/i;

/** Maps a Node error (or an XapiError already) onto an XapiError; never leaks the query. */
export function toXapiError(err: unknown, where: string): XapiError {
  if (err instanceof XapiError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (e?.name === 'AbortError' || code === 'ABORT_ERR') {
    return new XapiError('XAPI_CANCELLED', [where], `${where}: cancelled`, { cause: err });
  }
  if (code !== '' && TLS_ERROR_RE.test(code)) {
    return new XapiError('XAPI_TLS', [code], `${where}: TLS failure ${code}`, { cause: err });
  }
  const detail = code || (e?.message ?? String(err));
  return new XapiError('XAPI_TRANSPORT', [detail], `${where}: ${detail}`, { cause: err });
}

export interface SendOptions {
  method: 'GET' | 'POST' | 'PUT';
  url: URL;
  headers?: http.OutgoingHttpHeaders;
  /** Whole body, or a stream of chunks whose total is `contentLength`. */
  body?: Uint8Array | string | AsyncIterable<Uint8Array>;
  contentLength?: number;
  signal?: AbortSignal | undefined;
  /** Deadline for the whole exchange (headers and body), ms. */
  deadlineMs?: number | undefined;
  /** Longest silence on the socket, ms (for long transfers). */
  idleMs?: number | undefined;
  /** What the exchange is for, in errors (an RPC method name); default the HTTP method. */
  what?: string | undefined;
}

/**
 * One HTTP exchange. `response` resolves with the response head; `fail` aborts everything
 * with an error; `done` must be called once the body has been consumed (clears timers).
 */
export interface Exchange {
  readonly response: Promise<http.IncomingMessage>;
  /** Resolves when the request body has been fully written. */
  readonly sent: Promise<void>;
  fail(err: XapiError): void;
  done(): void;
  /**
   * True when the exchange failed on a kept-alive socket that the server had closed, before
   * any answer: the server never saw the request, so it can be sent again.
   */
  staleSocket(): boolean;
}

export function send(endpoint: Endpoint, opts: SendOptions): Exchange {
  // Errors name the host and what was asked of it (never the query: it may hold a session).
  const where = `${opts.what ?? opts.method} ${opts.url.protocol}//${opts.url.host}${opts.url.pathname}`;
  const mod = endpoint.secure ? httpsModule() : http;
  const headers: http.OutgoingHttpHeaders = { ...opts.headers };
  const body = opts.body;
  if (typeof body === 'string') headers['content-length'] = Buffer.byteLength(body);
  else if (body instanceof Uint8Array) headers['content-length'] = body.byteLength;
  else if (body !== undefined) {
    if (opts.contentLength === undefined) {
      throw new XapiError(
        'XAPI_INVALID_ARGUMENT',
        ['contentLength'],
        'a streamed body needs its length (xapi does not accept chunked uploads)',
      );
    }
    headers['content-length'] = opts.contentLength;
  }

  let req: http.ClientRequest | undefined;
  let res: http.IncomingMessage | undefined;
  let failure: XapiError | undefined;
  let timer: NodeJS.Timeout | undefined;
  let reused = false;
  let resetBeforeAnswer = false;
  let rejectResponse: (e: XapiError) => void = () => {};
  let rejectSent: (e: XapiError) => void = () => {};

  const cleanup = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    opts.signal?.removeEventListener('abort', onAbort);
  };
  const fail = (err: XapiError): void => {
    if (failure !== undefined) return;
    failure = err;
    cleanup();
    rejectResponse(err);
    rejectSent(err);
    res?.destroy(err);
    req?.destroy(err);
  };
  function onAbort(): void {
    fail(new XapiError('XAPI_CANCELLED', [where], `${where}: cancelled`));
  }

  const response = new Promise<http.IncomingMessage>((resolve, reject) => {
    rejectResponse = reject;
    if (opts.signal?.aborted) {
      failure = new XapiError('XAPI_CANCELLED', [where], `${where}: cancelled`);
      reject(failure);
      return;
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.deadlineMs !== undefined) {
      timer = setTimeout(
        () =>
          fail(
            new XapiError(
              'XAPI_TIMEOUT',
              [where, String(opts.deadlineMs)],
              `${where}: no answer within ${opts.deadlineMs} ms`,
            ),
          ),
        opts.deadlineMs,
      );
      timer.unref?.();
    }
    req = mod.request(opts.url, {
      method: opts.method,
      agent: endpoint.agent,
      headers,
      ...(endpoint.socketPath !== undefined ? { socketPath: endpoint.socketPath } : {}),
    });
    if (opts.idleMs !== undefined) {
      req.setTimeout(opts.idleMs, () =>
        fail(
          new XapiError(
            'XAPI_TIMEOUT',
            [where, String(opts.idleMs)],
            `${where}: nothing received for ${opts.idleMs} ms`,
          ),
        ),
      );
    }
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (res === undefined && reused && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) {
        resetBeforeAnswer = true;
      }
      fail(toXapiError(e, where));
    });
    req.on('response', (r) => {
      res = r;
      r.on('error', (e) => fail(toXapiError(e, where)));
      r.on('aborted', () =>
        fail(new XapiError('XAPI_TRANSPORT', ['aborted'], `${where}: response aborted`)),
      );
      resolve(r);
    });
  });
  response.catch(() => {});

  const sent = new Promise<void>((resolve, reject) => {
    rejectSent = reject;
    if (failure !== undefined || req === undefined) {
      reject(failure);
      return;
    }
    const r = req;
    r.once('socket', (socket) => {
      reused = r.reusedSocket;
      endpoint.trusted(socket).then(
        () => writeBody(r, body).then(resolve, (e: unknown) => fail(toXapiError(e, where))),
        (e: unknown) => fail(toXapiError(e, where)),
      );
    });
  });
  sent.catch(() => {});

  return {
    response,
    sent,
    fail,
    done: cleanup,
    staleSocket: () => resetBeforeAnswer,
  };
}

async function writeBody(
  req: http.ClientRequest,
  body: Uint8Array | string | AsyncIterable<Uint8Array> | undefined,
): Promise<void> {
  if (body === undefined || typeof body === 'string' || body instanceof Uint8Array) {
    await new Promise<void>((resolve) => req.end(body ?? '', () => resolve()));
    return;
  }
  for await (const chunk of body) {
    if (req.destroyed) return;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const go = (): void => {
          req.off('drain', go);
          req.off('close', go);
          resolve();
        };
        req.on('drain', go);
        req.on('close', go);
      });
    }
  }
  await new Promise<void>((resolve) => req.end(() => resolve()));
}

/** Reads the whole body, at most `max` bytes (XAPI_LIMIT beyond). */
export async function readBody(
  ex: Exchange,
  res: http.IncomingMessage,
  max: number,
  where: string,
): Promise<Buffer> {
  const refuse = (err: XapiError): never => {
    ex.fail(err);
    throw err;
  };
  const tooLong = (): XapiError =>
    new XapiError('XAPI_LIMIT', ['body', String(max)], `${where}: body over ${max} bytes`);
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) refuse(tooLong());
  const chunks: Buffer[] = [];
  // A declared length: the chunks are copied into the body as they come, so a large answer
  // (an all=true export, a pool's records) is not held twice, as chunks and joined.
  const whole =
    Number.isFinite(declared) && declared > 64 * 1024 ? Buffer.allocUnsafe(declared) : null;
  let total = 0;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (whole !== null && total + chunk.length <= whole.length) whole.set(chunk, total);
      total += chunk.length;
      if (total > max) refuse(tooLong());
      if (whole === null) chunks.push(chunk);
    }
  } catch (e) {
    throw toXapiError(e, where);
  }
  const broken = bodyFault(res, total, where);
  if (broken !== undefined) refuse(broken);
  ex.done();
  if (whole !== null) return whole;
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}

/**
 * Why a body that has ended after `total` bytes is not whole (the connection dropped, or it is
 * shorter than its Content-Length), or undefined when it is.
 */
export function bodyFault(
  res: http.IncomingMessage,
  total: number,
  where: string,
): XapiError | undefined {
  if (!res.complete) {
    return new XapiError('XAPI_TRANSPORT', ['incomplete'], `${where}: connection dropped`);
  }
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared !== total) {
    return new XapiError('XAPI_TRANSPORT', ['short body'], `${where}: body shorter than declared`);
  }
  return undefined;
}

/**
 * A body that ends with the connection (neither Content-Length nor chunked): only the sender
 * can tell whether it is whole.
 */
export function closeDelimited(res: http.IncomingMessage): boolean {
  return (
    res.headers['content-length'] === undefined &&
    !/chunked/i.test(String(res.headers['transfer-encoding'] ?? ''))
  );
}

/** Drains and discards a body (so that the socket returns to the pool). */
export async function discardBody(ex: Exchange, res: http.IncomingMessage): Promise<void> {
  try {
    for await (const _ of res) {
      // discard
    }
  } catch {
    // the exchange already failed; nothing to reuse
  }
  ex.done();
}
