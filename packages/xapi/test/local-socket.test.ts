import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rejection } from '../../../test-support/reject.js';
import { isXapiError, type VmRecord, XapiClient } from '../src/index.js';
import { type FakeOptions, FakeXapi } from './support/fake-xapi.js';

const started: FakeXapi[] = [];
const clients: XapiClient[] = [];
const dirs: string[] = [];

async function onSocket(opts: FakeOptions = {}): Promise<FakeXapi> {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-xapi-sock-'));
  dirs.push(dir);
  const f = await new FakeXapi({ ...opts, socketPath: join(dir, 'xapi') }).start();
  started.push(f);
  return f;
}

async function overTcp(opts: FakeOptions = {}): Promise<FakeXapi> {
  const f = await new FakeXapi({ password: 'secret', ...opts }).start();
  started.push(f);
  return f;
}

async function track(c: Promise<XapiClient>): Promise<XapiClient> {
  const client = await c;
  clients.push(client);
  return client;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.logout()));
  await Promise.all(started.splice(0).map((f) => f.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe.each(['jsonrpc', 'xmlrpc'] as const)("xapi's local Unix socket over %s", (transport) => {
  it('logs in as local root with no password, calls, and uses the HTTP handlers', async () => {
    const f = await onSocket({ streamDump: false });
    const c = await track(
      XapiClient.connect({
        socketPath: f.opts.socketPath!,
        username: 'root',
        password: '',
        transport,
      }),
    );
    expect(c.socketPath).toBe(f.opts.socketPath);
    expect(c.transport).toBe(transport);
    expect(f.sessions.has(c.sessionRef)).toBe(true);
    const vms = await c.getAllRecords<VmRecord>('VM');
    expect(vms.size).toBe(3);
    const [uuid] = [...vms.values()].map((v) => v.uuid);
    const tar = await c.exportMetadata({ uuid: uuid! });
    expect(Buffer.from(tar).toString()).toContain(uuid);
    expect(Buffer.from(await c.dumpDatabase()).toString()).toBe(f.database.toString());
    await c.importMetadata(Buffer.from('<value/>'), { dryRun: true });
    expect(f.log.map((l) => `${l.method} ${l.url}`)).toEqual(
      expect.arrayContaining([
        'GET /export_metadata',
        'GET /pool/xmldbdump',
        'PUT /import_metadata',
      ]),
    );
  });
});

describe('connect options', () => {
  it('refuses both or neither of url and socketPath', async () => {
    const none = await rejection(XapiClient.connect({ username: 'root', password: '' }));
    expect(isXapiError(none, 'XAPI_INVALID_ARGUMENT')).toBe(true);
    const both = await rejection(
      XapiClient.connect({ url: 'http://x', socketPath: '/x', username: 'root', password: '' }),
    );
    expect(isXapiError(both, 'XAPI_INVALID_ARGUMENT')).toBe(true);
  });

  it('a missing socket is a transport error naming no secret', async () => {
    const e = await rejection(
      XapiClient.connect({ socketPath: '/nonexistent/xapi', username: 'root', password: '' }),
    );
    expect(isXapiError(e, 'XAPI_TRANSPORT')).toBe(true);
  });
});

describe('a host in emergency mode (ocaml/xapi/api_server.ml)', () => {
  it('reports HOST_STILL_BOOTING from the id-0 array error, not a protocol id mismatch', async () => {
    const f = await overTcp();
    const c = await track(
      XapiClient.connect({
        url: f.url,
        username: 'root',
        password: 'secret',
        transport: 'jsonrpc',
      }),
    );
    f.emergency = true;
    const e = await rejection(c.call('VM.get_all_records'));
    expect(isXapiError(e, 'HOST_STILL_BOOTING')).toBe(true);
    const login = await rejection(
      XapiClient.connect({ url: f.url, username: 'root', password: 'secret' }),
    );
    expect(isXapiError(login, 'HOST_STILL_BOOTING')).toBe(true);
  });
});

describe('GET /pool/xmldbdump streamed without Content-Length (ocaml/xapi/pool_db_backup.ml)', () => {
  const big = Buffer.from(`<database>${'<row a="1"/>'.repeat(20_000)}</database>`);

  it('a whole dump is returned once its task succeeded', async () => {
    const f = await overTcp({ streamDump: true });
    f.database = big;
    const c = await track(XapiClient.connect({ url: f.url, username: 'root', password: 'secret' }));
    expect(Buffer.from(await c.dumpDatabase()).equals(big)).toBe(true);
    const parts: Buffer[] = [];
    for await (const chunk of await c.dumpDatabaseStream()) parts.push(Buffer.from(chunk));
    expect(Buffer.concat(parts).equals(big)).toBe(true);
  });

  it('a dump cut part-way fails with the task error, buffered or streamed', async () => {
    const f = await overTcp({ streamDump: true });
    f.database = big;
    f.cutDumpAt = 70_000;
    const c = await track(XapiClient.connect({ url: f.url, username: 'root', password: 'secret' }));
    const e = await rejection(c.dumpDatabase());
    expect(isXapiError(e, 'INTERNAL_ERROR')).toBe(true);
    const streamed = (async () => {
      for await (const _ of await c.dumpDatabaseStream()) {
        // consume
      }
    })();
    expect(isXapiError(await rejection(streamed), 'INTERNAL_ERROR')).toBe(true);
  });
});
