/**
 * Where requests go: one keep-alive agent per pool host (bounded sockets), over TCP, TLS or
 * xapi's local Unix socket, with TLS verification or certificate pinning checked before a
 * request writes a byte; and the fingerprint a caller may pin when a pool's certificate is not
 * trusted.
 */
import http from 'node:http';
import type https from 'node:https';
import { createRequire } from 'node:module';
import type { Duplex } from 'node:stream';
import type tls from 'node:tls';
import { XapiError } from './errors.js';

// node:https and node:tls load only when a URL is https (or a certificate is read): a client of
// an http URL or of the local socket (`xsmeta list` on a pool host) does not pay for them at
// start-up. Node caches built-ins, so each loads once.
const load = createRequire(import.meta.url);
/** node:https, loaded at first use. */
export const httpsModule = (): typeof https => load('node:https');
const tlsModule = (): typeof tls => load('node:tls');

export interface TlsSettings {
  /** Verify the pool certificate against the system CAs (default true). */
  rejectUnauthorized?: boolean;
  /** sha256 fingerprint of the pool certificate (hex, colons optional); replaces CA checks. */
  fingerprint?: string;
  /** Extra trusted CA certificates (PEM), e.g. the pool's own certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
}

/** Normalises a sha256 fingerprint to 64 lower-case hex digits, or throws. */
export function normaliseFingerprint(fp: string): string {
  const hex = fp
    .trim()
    .replace(/^sha256[:/]?/i, '')
    .replace(/[:\s]/g, '')
    .toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new XapiError(
      'XAPI_INVALID_ARGUMENT',
      ['tls.fingerprint'],
      'tls.fingerprint must be a sha256 fingerprint (64 hex digits, colons allowed)',
    );
  }
  return hex;
}

/** An agent plus the TLS gate every request passes before it sends a byte. */
export interface Endpoint {
  readonly agent: http.Agent;
  readonly secure: boolean;
  /** Every request goes over this Unix socket (xapi's local `/var/lib/xcp/xapi`). */
  readonly socketPath?: string | undefined;
  /** Resolves once the socket is trusted (pinning); rejects with XAPI_TLS otherwise. */
  trusted(socket: unknown): Promise<void>;
  destroy(): void;
}

const trustAlways = (): Promise<void> => Promise.resolve();

export function makeEndpoint(
  url: URL,
  settings: { tls?: TlsSettings; maxSockets?: number; socketPath?: string | undefined },
): Endpoint {
  const maxSockets = settings.maxSockets ?? 16;
  if (settings.socketPath !== undefined) {
    // Plain HTTP over the host's local socket: no TLS there (xapi trusts the peer instead).
    const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    return {
      agent,
      secure: false,
      socketPath: settings.socketPath,
      trusted: trustAlways,
      destroy: () => agent.destroy(),
    };
  }
  if (url.protocol === 'http:') {
    const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
    return { agent, secure: false, trusted: trustAlways, destroy: () => agent.destroy() };
  }
  const https = httpsModule();
  const pin = settings.tls?.fingerprint;
  if (pin === undefined) {
    const agent = new https.Agent({
      keepAlive: true,
      maxSockets,
      maxFreeSockets: maxSockets,
      rejectUnauthorized: settings.tls?.rejectUnauthorized ?? true,
      ...(settings.tls?.ca !== undefined ? { ca: settings.tls.ca } : {}),
    });
    return { agent, secure: true, trusted: trustAlways, destroy: () => agent.destroy() };
  }
  const want = normaliseFingerprint(pin);
  const tls = tlsModule();
  const verdicts = new WeakMap<object, Promise<void>>();
  class PinnedAgent extends https.Agent {
    override createConnection(
      options: https.RequestOptions,
      callback?: (err: Error | null, stream: Duplex) => void,
    ): Duplex | null | undefined {
      const socket = super.createConnection(options, callback);
      if (socket instanceof tls.TLSSocket) {
        const verdict = new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', () => {
            const got = (socket.getPeerCertificate()?.fingerprint256 ?? '')
              .replace(/:/g, '')
              .toLowerCase();
            if (got === want) {
              resolve();
            } else {
              const err = new XapiError(
                'XAPI_TLS',
                ['fingerprint mismatch'],
                'the pool certificate does not match the pinned sha256 fingerprint',
              );
              reject(err);
              socket.destroy(err);
            }
          });
          socket.once('close', () =>
            reject(new XapiError('XAPI_TLS', ['closed'], 'connection closed before TLS handshake')),
          );
        });
        verdict.catch(() => {});
        verdicts.set(socket, verdict);
      }
      return socket;
    }
  }
  const agent = new PinnedAgent({
    keepAlive: true,
    maxSockets,
    maxFreeSockets: maxSockets,
    // The pin replaces CA verification (pools mostly use self-signed certificates); session
    // resumption is off so that every connection presents its certificate.
    rejectUnauthorized: false,
    maxCachedSessions: 0,
  });
  return {
    agent,
    secure: true,
    trusted: (socket) =>
      verdicts.get(socket as object) ??
      Promise.reject(new XapiError('XAPI_TLS', ['unverified socket'], 'socket not verified')),
    destroy: () => agent.destroy(),
  };
}

/** Certificate errors that pinning the pool's own (self-signed) certificate would cure. */
export const UNTRUSTED_CERT_RE = /SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|CERT_UNTRUSTED/;

/**
 * The sha256 fingerprint of the certificate a TLS server presents (AA:BB:.. form), read without
 * trusting it and without sending anything; null when it cannot be had within `timeoutMs`.
 */
export function peerFingerprint(url: URL, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tlsModule().connect({
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port: Number(url.port || 443),
      rejectUnauthorized: false,
      ...(/^[\d.]+$|:/.test(url.hostname) ? {} : { servername: url.hostname }),
    });
    const done = (fp: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(fp);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    timer.unref?.();
    socket.once('secureConnect', () => done(socket.getPeerCertificate()?.fingerprint256 ?? null));
    socket.once('error', () => done(null));
  });
}
