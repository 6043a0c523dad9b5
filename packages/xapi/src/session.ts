/**
 * A session on a pool: the login (JSON-RPC, or XML-RPC when `/jsonrpc` is missing; a pool
 * slave's HOST_IS_SLAVE followed to the master; over xapi's local socket, local root whatever
 * the password), the calls made with it (one shared re-login on SESSION_INVALID), and the
 * logout. Errors a host sends before it reads a call (HOST_STILL_BOOTING) are decoded by
 * `rpc.ts`.
 */
import {
  type ConnectSettings,
  readConnectOptions,
  type XapiConnectOptions,
} from './connect-options.js';
import { type Endpoint, makeEndpoint, peerFingerprint, UNTRUSTED_CERT_RE } from './endpoint.js';
import { XapiError } from './errors.js';
import {
  JsonRpcUnsupported,
  type RpcCallOptions,
  type RpcLink,
  rpcCall,
  type Transport,
} from './rpc.js';

const MAX_MASTER_HOPS = 3;

/** Who asks the pool; the password lives only in this closure, out of any object's state. */
type Login = (link: RpcLink) => Promise<string>;

export class Session {
  readonly settings: ConnectSettings;
  readonly #link: RpcLink;
  readonly #login: Login;
  #ref: string;
  #relogin: Promise<string> | undefined;
  #closed = false;

  private constructor(settings: ConnectSettings, link: RpcLink, ref: string, login: Login) {
    this.settings = settings;
    this.#link = link;
    this.#ref = ref;
    this.#login = login;
  }

  /**
   * Logs in with `session.login_with_password`. A pool slave answers `HOST_IS_SLAVE [master]`:
   * the login is then sent to the master (at most 3 hops; never over the local socket).
   */
  static async open(opts: XapiConnectOptions): Promise<Session> {
    const settings = readConnectOptions(opts);
    const password = opts.password;
    const login: Login = async (link) => {
      const params = [settings.username, password, '1.0', settings.originator];
      try {
        // The login has the deadline of every call: a silent server must not hang the caller.
        return String(
          await rpcCall(link, 'session.login_with_password', params, {
            timeoutMs: settings.timeoutMs,
          }),
        );
      } catch (e) {
        throw redact(e, password);
      }
    };
    let base = settings.url;
    for (let hop = 0; ; hop++) {
      const endpoint = makeEndpoint(base, {
        tls: settings.tls,
        maxSockets: settings.maxSockets,
        socketPath: settings.socketPath,
      });
      const link = (transport: Transport): RpcLink => ({
        endpoint,
        base,
        maxResponseBytes: settings.maxResponseBytes,
        transport,
      });
      try {
        if (settings.transport !== 'auto') {
          const l = link(settings.transport);
          return new Session(settings, l, await login(l), login);
        }
        try {
          const l = link('jsonrpc');
          return new Session(settings, l, await login(l), login);
        } catch (e) {
          if (!(e instanceof JsonRpcUnsupported)) throw e;
          const l = link('xmlrpc');
          return new Session(settings, l, await login(l), login);
        }
      } catch (e) {
        endpoint.destroy();
        if (
          e instanceof XapiError &&
          e.code === 'HOST_IS_SLAVE' &&
          hop < MAX_MASTER_HOPS &&
          settings.socketPath === undefined
        ) {
          base = masterUrl(base, e.params[0] ?? '');
          continue;
        }
        throw await withFingerprint(e, base, settings);
      }
    }
  }

  /** The current session reference (`OpaqueRef:…`); it changes when the session is renewed. */
  get ref(): string {
    return this.#ref;
  }

  /** The master's base URL (after any HOST_IS_SLAVE redirect). */
  get base(): URL {
    return this.#link.base;
  }

  get endpoint(): Endpoint {
    return this.#link.endpoint;
  }

  get transport(): Transport {
    return this.#link.transport;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Throws XAPI_CLOSED once the session was logged out. */
  checkOpen(): void {
    if (this.#closed) throw new XapiError('XAPI_CLOSED', [], 'the session was logged out');
  }

  /**
   * Calls `method` with the session ref prepended (deadline: the client's `timeoutMs` unless
   * `opts` says otherwise); logs in again once on SESSION_INVALID and repeats the call.
   */
  async call(
    method: string,
    params: readonly unknown[],
    opts: RpcCallOptions = { timeoutMs: this.settings.timeoutMs },
  ): Promise<unknown> {
    this.checkOpen();
    const ref = this.#ref;
    try {
      return await rpcCall(this.#link, method, [ref, ...params], opts);
    } catch (e) {
      if (
        !(e instanceof XapiError) ||
        e.code !== 'SESSION_INVALID' ||
        method.startsWith('session.')
      ) {
        throw e;
      }
    }
    await this.#renew(ref);
    return rpcCall(this.#link, method, [this.#ref, ...params], opts);
  }

  /** Concurrent calls that find the same stale session share one login. */
  async #renew(stale: string): Promise<void> {
    if (this.#ref !== stale) return;
    if (this.#relogin === undefined) {
      this.#relogin = this.#login(this.#link).finally(() => {
        this.#relogin = undefined;
      });
    }
    this.#ref = await this.#relogin;
  }

  /** `session.logout`, then closes the sockets. Idempotent; never throws. */
  async logout(): Promise<void> {
    if (this.#closed) return;
    try {
      await rpcCall(this.#link, 'session.logout', [this.#ref], {
        timeoutMs: Math.min(this.settings.timeoutMs, 10_000),
      });
    } catch {
      // the session dies with the sockets anyway
    } finally {
      this.#closed = true;
      this.#link.endpoint.destroy();
    }
  }
}

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

/** The password, wherever the server echoed it, as `***`. */
function redact(err: unknown, secret: string): unknown {
  if (!(err instanceof XapiError) || secret === '') return err;
  const scrub = (s: string): string =>
    s === secret ? '***' : secret.length >= 4 ? s.split(secret).join('***') : s;
  const params = err.params.map(scrub);
  const message = scrub(err.message);
  if (message === err.message && params.every((p, i) => p === err.params[i])) return err;
  return new XapiError(err.code, params, message);
}

/**
 * A certificate the client does not trust (a pool's self-signed one, mostly): the error gains
 * the certificate's sha256 fingerprint, as `params[1]`, so the caller can say what to pin.
 */
async function withFingerprint(e: unknown, base: URL, s: ConnectSettings): Promise<unknown> {
  if (
    !(e instanceof XapiError) ||
    e.code !== 'XAPI_TLS' ||
    s.tls?.fingerprint !== undefined ||
    !UNTRUSTED_CERT_RE.test(e.params[0] ?? '')
  )
    return e;
  const fp = await peerFingerprint(base, Math.min(s.timeoutMs, 10_000));
  if (fp === null) return e;
  return new XapiError(
    'XAPI_TLS',
    [e.params[0] ?? '', fp],
    `the certificate of ${base.host} is not trusted (${e.params[0]}); its sha256 fingerprint is ${fp}: if that is the pool's certificate, pin it (tls.fingerprint)`,
    { cause: e },
  );
}
