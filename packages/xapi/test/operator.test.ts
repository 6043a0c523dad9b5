import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { xapiFailure as failure } from '../../../test-support/xapi.js';
import { XapiClient } from '../src/index.js';
import { FakeXapi } from './support/fake-xapi.js';

const toClose: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of toClose) await c();
});

/** A server that accepts connections and never says a word. */
async function silent(): Promise<string> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  toClose.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const { port } = server.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

it('a silent server fails the login at its deadline, naming the host and the call', async () => {
  const url = await silent();
  const e = await failure(
    XapiClient.connect({ url, username: 'root', password: 'pw', timeoutMs: 300 }),
  );
  expect(e.code).toBe('XAPI_TIMEOUT');
  expect(e.message).toBe(`session.login_with_password ${url}/jsonrpc: no answer within 300 ms`);
  expect(e.message).not.toContain('pw');
});

it("a self-signed certificate's error carries its sha256 fingerprint, to pin", async () => {
  const fx = new URL('./fixtures/', import.meta.url);
  const pem = {
    key: readFileSync(new URL('tls-key.pem', fx), 'utf8'),
    cert: readFileSync(new URL('tls-cert.pem', fx), 'utf8'),
  };
  const f = await new FakeXapi({ tls: pem }).start();
  toClose.push(() => f.stop());
  const fp = new X509Certificate(pem.cert).fingerprint256;
  const e = await failure(XapiClient.connect({ url: f.url, username: 'root', password: 'pw' }));
  expect(e.code).toBe('XAPI_TLS');
  expect(e.params[1]).toBe(fp);
  expect(e.message).toContain(`its sha256 fingerprint is ${fp}`);
  // Pinned, it connects.
  const x = await XapiClient.connect({
    url: f.url,
    username: 'root',
    password: 'secret',
    tls: { fingerprint: fp },
  });
  await x.logout();
});
