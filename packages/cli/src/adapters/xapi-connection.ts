import { XapiClient, XapiError } from '@xsmeta/xapi';
import { ConfigError, localSocket, type Settings } from '../config.js';

/**
 * The XAPI session of a command: over the local socket as local root when there is one, else
 * to the URL with the password (asked on the terminal when none is set).
 */
export async function connect(s: Settings): Promise<XapiClient> {
  const socketPath = localSocket(s);
  if (socketPath !== null) {
    // As xe on a pool host: xapi trusts the local socket's peer as root, so no password is
    // asked or sent (ocaml/xapi/xapi_session.ml, login_with_password, Context.preauth).
    return XapiClient.connect({ socketPath, username: s.username, password: '' });
  }
  if (!s.url)
    throw new ConfigError(
      'NO_URL',
      'no pool to talk to: set --url https://POOL-MASTER or XSMETA_URL',
    );
  // The prompt (and node:readline) is loaded only when there is a password to ask for.
  const password =
    s.password ?? (await (await import('../process/password.js')).promptPassword(s.username));
  const insecure = process.env.XSMETA_TLS_INSECURE === '1';
  const fingerprint = process.env.XSMETA_TLS_FINGERPRINT;
  return XapiClient.connect({
    url: s.url,
    username: s.username,
    password,
    timeoutMs: timeoutMs(),
    ...(insecure || fingerprint
      ? {
          tls: {
            ...(insecure ? { rejectUnauthorized: false } : {}),
            ...(fingerprint ? { fingerprint } : {}),
          },
        }
      : {}),
  }).catch((e: unknown) => {
    throw operatorHint(e);
  });
}

/** The deadline of the connection and of each call: XSMETA_TIMEOUT_MS, else 60 s. */
function timeoutMs(): number {
  const v = process.env.XSMETA_TIMEOUT_MS;
  if (v === undefined || v === '') return 60_000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new ConfigError('BAD_TIMEOUT', `XSMETA_TIMEOUT_MS must be a number of ms, not '${v}'`);
  return n;
}

/** A connection error an operator can act on says how: a certificate to pin, a deadline to raise. */
function operatorHint(e: unknown): unknown {
  if (!(e instanceof XapiError)) return e;
  if (e.code === 'XAPI_TLS' && e.params[1])
    return new XapiError(
      'XAPI_TLS',
      e.params,
      `the pool's certificate is not trusted (${e.params[0]}); if its sha256 fingerprint ${e.params[1]} is the pool's (on the master: openssl x509 -noout -fingerprint -sha256 -in /etc/xensource/xapi-ssl.pem), set XSMETA_TLS_FINGERPRINT=${e.params[1]}`,
      { cause: e },
    );
  if (e.code === 'XAPI_TIMEOUT')
    return new XapiError(
      'XAPI_TIMEOUT',
      e.params,
      `${e.message} (XSMETA_TIMEOUT_MS sets the deadline)`,
      { cause: e },
    );
  return e;
}
