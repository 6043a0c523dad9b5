/**
 * The two RPC transports of xapi: JSON-RPC (`POST /jsonrpc`) and XML-RPC (`POST /`). Both
 * resolve with the call's value or reject with an {@link XapiError} carrying the XAPI error
 * code and parameters. Dates arriving over XML-RPC become xapi's date strings, as JSON-RPC
 * gives them, so callers see the same values whatever the transport.
 */

import type { IncomingMessage } from 'node:http';
import type { Endpoint } from './endpoint.js';
import { XapiError } from './errors.js';
import { readBody, send } from './http.js';
import { formatXapiDate, isStruct, type XmlRpcValue } from './xmlrpc.js';
import { decodeMethodResponse } from './xmlrpc-decode.js';
import { encodeMethodCall } from './xmlrpc-encode.js';

export type Transport = 'jsonrpc' | 'xmlrpc';

interface RpcContext {
  readonly endpoint: Endpoint;
  readonly base: URL;
  readonly maxResponseBytes: number;
}

export interface RpcCallOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
  /** Decodes a JSON-RPC reply's bytes instead of JSON.parse (see project.ts). */
  decodeJson?: ((body: Buffer) => unknown) | undefined;
}

/** The JSON-RPC endpoint answered 404 or not with JSON: the caller may fall back to XML-RPC. */
export class JsonRpcUnsupported extends XapiError {
  constructor(detail: string) {
    super('XAPI_PROTOCOL', ['jsonrpc unsupported', detail], `JSON-RPC unsupported: ${detail}`);
  }
}

let nextId = 1;

/**
 * Calls that change nothing (or nothing that matters when repeated): only these are sent
 * again after a connection reset, since the pool may have run a call whose answer was lost.
 */
const READ_ONLY_RE =
  /^(?:[A-Za-z_]+\.get_[A-Za-z_]+|event\.from|system\.[A-Za-z_]+|session\.login_with_password)$/;

export function isReadOnlyCall(method: string): boolean {
  return READ_ONLY_RE.test(method);
}

/** An RPC answer: its HTTP status, its content-type and its whole body. */
interface RpcReply {
  status: number;
  contentType: string;
  body: Buffer;
}

/**
 * POSTs an RPC body and reads the answer (at most `maxResponseBytes`). A read-only call whose
 * kept-alive socket turned out closed before any answer (the server timed it out as the
 * request left) is sent once more on a new socket.
 */
async function post(
  ctx: RpcContext,
  method: string,
  where: string,
  url: URL,
  type: string,
  body: string,
  opts: RpcCallOptions,
): Promise<RpcReply> {
  for (let attempt = 0; ; attempt++) {
    const ex = send(ctx.endpoint, {
      method: 'POST',
      url,
      headers: { 'content-type': type, accept: type },
      body,
      signal: opts.signal,
      deadlineMs: opts.timeoutMs,
      what: method,
    });
    let res: IncomingMessage;
    try {
      res = await ex.response;
    } catch (e) {
      if (attempt > 0 || !ex.staleSocket() || !isReadOnlyCall(method)) throw e;
      continue;
    }
    const ctype = res.headers['content-type'];
    return {
      status: res.statusCode ?? 0,
      contentType: (Array.isArray(ctype) ? ctype[0] : ctype) ?? '',
      body: await readBody(ex, res, ctx.maxResponseBytes, where),
    };
  }
}

function httpStatusError(where: string, status: number): XapiError {
  return new XapiError('XAPI_TRANSPORT', [`HTTP ${status}`], `${where}: HTTP ${status}`);
}

function errorFromDescription(desc: unknown, fallback: string): XapiError {
  if (Array.isArray(desc) && desc.length > 0) {
    const [code, ...params] = desc;
    return new XapiError(String(code), params.map(stringifyParam));
  }
  return new XapiError('XAPI_PROTOCOL', [fallback], `malformed error description: ${fallback}`);
}

function stringifyParam(p: unknown): string {
  return typeof p === 'string' ? p : (JSON.stringify(p) ?? String(p));
}

async function jsonRpcCall(
  ctx: RpcContext,
  method: string,
  params: readonly unknown[],
  opts: RpcCallOptions,
): Promise<unknown> {
  const url = new URL('/jsonrpc', ctx.base);
  const id = nextId++;
  let body: string;
  try {
    body = JSON.stringify({ jsonrpc: '2.0', method, params, id });
  } catch (e) {
    throw new XapiError(
      'XAPI_INVALID_ARGUMENT',
      [method],
      `cannot encode the params of ${method}`,
      {
        cause: e,
      },
    );
  }
  const where = `JSON-RPC ${method}`;
  const {
    status,
    contentType: ctype,
    body: answer,
  } = await post(ctx, method, where, url, 'application/json', body, opts);
  if (status === 404) throw new JsonRpcUnsupported('HTTP 404');
  if (status !== 200) throw httpStatusError(where, status);
  if (ctype !== 'application/json') {
    throw new JsonRpcUnsupported(`content-type ${JSON.stringify(ctype.slice(0, 60))}`);
  }
  let reply: unknown;
  try {
    reply = opts.decodeJson ? opts.decodeJson(answer) : JSON.parse(answer.toString('utf8'));
  } catch {
    throw new XapiError('XAPI_PROTOCOL', ['bad JSON'], `${where}: the answer is not JSON`);
  }
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) {
    throw new XapiError(
      'XAPI_PROTOCOL',
      ['not an object'],
      `${where}: the answer is not an object`,
    );
  }
  const r = reply as { id?: unknown; result?: unknown; error?: unknown };
  // xapi answers an error raised before it read the call's id (a host in emergency mode:
  // HOST_STILL_BOOTING) with id 0 and the error description as a bare array
  // (ocaml/xapi/api_server.ml, the Server_error branch of the JSON-RPC handler).
  if ((r.id === 0 || r.id === null) && Array.isArray(r.error) && r.error.length > 0) {
    throw errorFromDescription(r.error, 'error');
  }
  if (r.id !== id && r.id !== String(id)) {
    throw new XapiError('XAPI_PROTOCOL', ['id mismatch'], `${where}: answer to another request`);
  }
  const err = r.error;
  if (err !== undefined && err !== null) {
    if (Array.isArray(err)) throw errorFromDescription(err, 'error');
    if (typeof err === 'object') {
      const { message, data } = err as { message?: unknown; data?: unknown };
      if (typeof message === 'string' && message !== '') {
        const params = Array.isArray(data) ? data.map(stringifyParam) : [];
        return Promise.reject(new XapiError(message, params));
      }
    }
    throw new XapiError('XAPI_PROTOCOL', ['bad error'], `${where}: malformed error object`);
  }
  if (!('result' in r)) {
    throw new XapiError('XAPI_PROTOCOL', ['no result'], `${where}: neither result nor error`);
  }
  return r.result;
}

/**
 * Turns Date values into xapi date strings, recursively and in place (a decoded XML-RPC result
 * or `task.result`), so that values look as JSON-RPC gives them.
 */
export function normaliseXml(v: XmlRpcValue): unknown {
  if (typeof v !== 'object') return v;
  if (v instanceof Date) return formatXapiDate(v);
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const item = v[i]!;
      if (typeof item === 'object') v[i] = normaliseXml(item) as XmlRpcValue;
    }
    return v;
  }
  for (const k of Object.keys(v)) {
    const item = v[k]!;
    if (typeof item === 'object') v[k] = normaliseXml(item) as XmlRpcValue;
  }
  return v;
}

async function xmlRpcCall(
  ctx: RpcContext,
  method: string,
  params: readonly unknown[],
  opts: RpcCallOptions,
): Promise<unknown> {
  const url = new URL('/', ctx.base);
  const body = encodeMethodCall(method, params as XmlRpcValue[]);
  const where = `XML-RPC ${method}`;
  const { status, body: answer } = await post(ctx, method, where, url, 'text/xml', body, opts);
  const text = answer.toString('utf8');
  if (status !== 200) throw httpStatusError(where, status);
  const reply = decodeMethodResponse(text);
  if (!isStruct(reply) || typeof reply.Status !== 'string') {
    throw new XapiError('XAPI_PROTOCOL', ['no Status'], `${where}: answer without Status`);
  }
  if (reply.Status === 'Success') return normaliseXml(reply.Value ?? '');
  if (reply.Status === 'Failure') throw errorFromDescription(reply.ErrorDescription, 'Failure');
  throw new XapiError('XAPI_PROTOCOL', ['bad Status'], `${where}: unknown Status`);
}

/** Where and how calls go: the transport chosen at login, over the session's endpoint. */
export interface RpcLink extends RpcContext {
  readonly transport: Transport;
}

/** One call over the link's transport (no session is added: `params` are sent as given). */
export function rpcCall(
  link: RpcLink,
  method: string,
  params: readonly unknown[],
  opts: RpcCallOptions,
): Promise<unknown> {
  return link.transport === 'jsonrpc'
    ? jsonRpcCall(link, method, params, opts)
    : xmlRpcCall(link, method, params, opts);
}
