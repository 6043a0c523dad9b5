/**
 * The options of `XapiClient.connect`, checked once: every bad value is refused with
 * `XAPI_INVALID_ARGUMENT` naming it, before anything is sent.
 */
import { normaliseFingerprint, type TlsSettings } from './endpoint.js';
import { XapiError } from './errors.js';

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

/** The checked options, with their defaults; the password is left out (see `session.ts`). */
export interface ConnectSettings {
  /** The base URL given (`http://localhost/` over the socket: only the Host header there). */
  readonly url: URL;
  readonly socketPath: string | undefined;
  readonly transport: 'jsonrpc' | 'xmlrpc' | 'auto';
  readonly username: string;
  readonly originator: string;
  readonly tls: TlsSettings | undefined;
  readonly timeoutMs: number;
  readonly maxSockets: number;
  readonly maxResponseBytes: number;
  readonly taskTimeoutMs: number;
}

export function readConnectOptions(opts: XapiConnectOptions): ConnectSettings {
  if (typeof opts.username !== 'string' || typeof opts.password !== 'string') {
    throw new XapiError(
      'XAPI_INVALID_ARGUMENT',
      ['credentials'],
      'username and password are required',
    );
  }
  const transport = opts.transport ?? 'auto';
  if (transport !== 'auto' && transport !== 'jsonrpc' && transport !== 'xmlrpc') {
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
  return {
    // Over the socket the host part is only the Host header xapi ignores.
    url: parseBaseUrl(opts.url ?? 'http://localhost/'),
    socketPath,
    transport,
    username: opts.username,
    originator: opts.originator ?? 'xsmeta',
    tls: opts.tls,
    timeoutMs: positive(opts.timeoutMs, 'timeoutMs', 60_000),
    maxSockets: positive(opts.maxSockets, 'maxSockets', 16),
    maxResponseBytes: positive(opts.maxResponseBytes, 'maxResponseBytes', 256 * 1024 * 1024),
    taskTimeoutMs: positive(opts.taskTimeoutMs, 'taskTimeoutMs', 60 * 60_000),
  };
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
