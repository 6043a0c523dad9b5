import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xapiFailure } from '../../../test-support/xapi.js';
import { XapiClient } from '../src/index.js';
import { FakeXapi } from './support/fake-xapi.js';

/** A fresh self-signed certificate for 127.0.0.1 (openssl CLI), or the committed fixture. */
function selfSigned(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'xapi-tls-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-days',
        '2',
      ],
      { stdio: 'ignore' },
    );
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } catch {
    const fx = new URL('./fixtures/', import.meta.url);
    return {
      key: readFileSync(new URL('tls-key.pem', fx), 'utf8'),
      cert: readFileSync(new URL('tls-cert.pem', fx), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PASSWORD = 'secret';
let f: FakeXapi;
let pem: { key: string; cert: string };
let fingerprint: string;

beforeAll(async () => {
  pem = selfSigned();
  fingerprint = new X509Certificate(pem.cert).fingerprint256;
  f = await new FakeXapi({ tls: pem }).start();
});

afterAll(async () => {
  await f.stop();
});

async function code(p: Promise<unknown>): Promise<string> {
  return (await xapiFailure(p, PASSWORD)).code;
}

describe('TLS', () => {
  const base = () => ({ url: f.url, username: 'root', password: PASSWORD });

  it('verifies certificates by default: a self-signed pool is refused before any request', async () => {
    const before = f.log.length;
    expect(await code(XapiClient.connect(base()))).toBe('XAPI_TLS');
    expect(f.log.length).toBe(before);
  });

  it('trusts the pool certificate when given as a CA', async () => {
    const c = await XapiClient.connect({ ...base(), tls: { ca: pem.cert } });
    expect((await c.getAllRecords('VM')).size).toBe(3);
    await c.logout();
  });

  it('accepts a self-signed certificate with rejectUnauthorized: false', async () => {
    const c = await XapiClient.connect({ ...base(), tls: { rejectUnauthorized: false } });
    expect((await c.getAllRecords('VM')).size).toBe(3);
    await c.logout();
  });

  it('accepts the pinned fingerprint (any spelling) over reused sockets and transfers', async () => {
    for (const pin of [fingerprint, fingerprint.replace(/:/g, '').toLowerCase()]) {
      const c = await XapiClient.connect({ ...base(), tls: { fingerprint: pin } });
      for (let i = 0; i < 3; i++) expect((await c.getAllRecords('VM')).size).toBe(3);
      const [ref] = [...f.vms.keys()];
      expect((await c.exportMetadata({ ref: ref! })).byteLength).toBeGreaterThan(0);
      await c.logout();
    }
  });

  it('refuses a certificate that does not match the pin, without sending the password', async () => {
    const before = f.log.length;
    const wrong = fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00');
    expect(await code(XapiClient.connect({ ...base(), tls: { fingerprint: wrong } }))).toBe(
      'XAPI_TLS',
    );
    expect(f.log.length).toBe(before);
  });
});
