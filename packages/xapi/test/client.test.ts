import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  parseTaskResult,
  type TaskRecord,
  type VmRecord,
  XapiClient,
  XapiError,
} from '../src/index.js';
import { cleanUp, connect, failure, fake, PASSWORD } from './support/clients.js';
import { FakeXapi } from './support/fake-xapi.js';

afterEach(cleanUp);

describe.each(['jsonrpc', 'xmlrpc'] as const)('RPC over %s', (transport) => {
  it('lists records keeping only the fields asked for, as getAllRecords gives them', async () => {
    const f = await fake();
    const c = await connect(f, { transport });
    const whole = await c.getAllRecords<VmRecord>('VM');
    const some = await c.getAllRecordsFields('VM', ['uuid', 'memory_static_max', 'VBDs']);
    expect([...some.keys()]).toEqual([...whole.keys()]);
    for (const [ref, rec] of some) {
      const w = whole.get(ref)!;
      expect(rec).toEqual({ uuid: w.uuid, memory_static_max: w.memory_static_max, VBDs: w.VBDs });
      expect(typeof rec.memory_static_max).toBe('number');
    }
  });

  it('logs in, calls, lists records with int fields as numbers, logs out', async () => {
    const f = await fake();
    const c = await connect(f, { transport });
    expect(c.transport).toBe(transport);
    expect(c.sessionRef).toMatch(/^OpaqueRef:/);
    expect(f.sessions.has(c.sessionRef)).toBe(true);
    const vms = await c.getAllRecords<VmRecord>('VM');
    expect(vms.size).toBe(3);
    const first = [...vms.values()][0]!;
    expect(first.memory_static_max).toBe(4294967296);
    expect(first.VCPUs_max).toBe(2);
    expect(typeof first.is_control_domain).toBe('boolean');
    const [ref] = [...vms.keys()];
    expect((await c.getRecord<VmRecord>('VM', ref!)).name_label).toBe(first.name_label);
    expect(await c.call('test.echo', 'a', 1, true, ['x'], { k: 'v' })).toEqual(
      transport === 'jsonrpc'
        ? ['a', 1, true, ['x'], { k: 'v' }]
        : ['a', '1', true, ['x'], { k: 'v' }],
    );
    const session = c.sessionRef;
    await c.logout();
    expect(f.sessions.has(session)).toBe(false);
    await c.logout();
    expect((await failure(() => c.call('VM.get_all_records'))).code).toBe('XAPI_CLOSED');
  });

  it('reports XAPI errors with their code and params', async () => {
    const f = await fake();
    const c = await connect(f, { transport });
    const e = await failure(() => c.call('VM.get_record', 'OpaqueRef:nope'));
    expect(e.code).toBe('HANDLE_INVALID');
    expect(e.params).toEqual(['VM', 'OpaqueRef:nope']);
    expect((await failure(() => c.call('no.such'))).code).toBe('MESSAGE_METHOD_UNKNOWN');
  });

  it('fails login with SESSION_AUTHENTICATION_FAILED and never shows the password', async () => {
    const f = await fake({ echoPassword: true });
    const e = await failure(
      () => XapiClient.connect({ url: f.url, username: 'root', password: 'wrong-pass', transport }),
      'wrong-pass',
    );
    expect(e.code).toBe('SESSION_AUTHENTICATION_FAILED');
    expect(e.params[0]).toBe('root');
    expect(e.params[1]).toBe('wrong password ***');
  });

  it('follows HOST_IS_SLAVE to the master', async () => {
    const master = await fake();
    const slave = await fake({ slaveOf: `127.0.0.1:${master.port}` });
    const c = await connect(slave, { transport });
    expect(c.url).toBe(`${master.url}/`);
    expect(master.sessions.has(c.sessionRef)).toBe(true);
    expect(slave.sessions.size).toBe(0);
    expect((await c.getAllRecords('VM')).size).toBe(3);
  });

  it('gives up after a loop of HOST_IS_SLAVE', async () => {
    const a = await fake();
    a.opts.slaveOf = `127.0.0.1:${a.port}`;
    const e = await failure(() => connect(a, { transport }));
    expect(e.code).toBe('HOST_IS_SLAVE');
  });

  it('logs in again once when the session expires', async () => {
    const f = await fake();
    const c = await connect(f, { transport });
    const before = c.sessionRef;
    f.sessions.clear();
    const [a, b] = await Promise.all([c.getAllRecords('VM'), c.getAllRecords('VM')]);
    expect(a.size + b.size).toBe(6);
    expect(c.sessionRef).not.toBe(before);
    expect(f.rpcCalls().filter((m) => m === 'session.login_with_password')).toHaveLength(2);
  });

  it.each([true, false])(
    'callAsync waits for the task (events: %s) and destroys it',
    async (events) => {
      const f = await fake({ noEvents: !events });
      const c = await connect(f, { transport });
      const [vm] = [...f.vms.keys()];
      const ref = await c.callAsync<string>('VM.clone', vm, 'copy');
      expect(ref).toMatch(/^OpaqueRef:/);
      expect(f.vms.get(ref)?.name_label).toBe('copy');
      expect(f.tasks.size).toBe(0);
      expect(f.rpcCalls()).toContain(events ? 'event.from' : 'task.get_record');
      const e = await failure(() => c.callAsync('VM.start', vm, false, false));
      expect(e.code).toBe('VM_BAD_POWER_STATE');
      expect(e.params).toEqual([vm, 'halted', 'running']);
      expect(f.tasks.size).toBe(0);
    },
  );

  it('waitTask honours its timeout and AbortSignal', async () => {
    const f = await fake();
    const c = await connect(f, { transport });
    const task = await c.call<string>('task.create', 'never', '');
    const t0 = Date.now();
    expect((await failure(() => c.waitTask(task, { timeoutMs: 300 }))).code).toBe('XAPI_TIMEOUT');
    // The task never ends: any bound shows the timeout acted; a generous one holds under load.
    expect(Date.now() - t0).toBeLessThan(30_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    expect((await failure(() => c.waitTask(task, { signal: ac.signal }))).code).toBe(
      'XAPI_CANCELLED',
    );
    f.finishTask(task, { result: '<value><array><data><value>a</value></data></array></value>' });
    expect(await c.waitTask(task)).toContain('<array>');
    expect((await failure(() => c.waitTask('OpaqueRef:none'))).code).toBe('HANDLE_INVALID');
  });

  it('gives dates as xapi strings and bounds the answer size', async () => {
    const f = await fake();
    const c = await connect(f, { transport });
    const task = await c.call<string>('task.create', 'd', '');
    const rec = await c.getRecord<TaskRecord>('task', task);
    expect(rec.created).toMatch(/^\d{8}T\d\d:\d\d:\d\dZ$/);
    expect(rec.status).toBe('pending');
    const small = await connect(f, { transport, maxResponseBytes: 400 });
    expect((await failure(() => small.getAllRecords('VM'))).code).toBe('XAPI_LIMIT');
    expect((await small.call<unknown[]>('test.echo', 'x')).length).toBe(1);
  });

  it('times out a slow call and survives a dropped connection', async () => {
    const f = await fake();
    const c = await connect(f, { transport, timeoutMs: 300 });
    const t0 = Date.now();
    // The answer would take 60 s; the 300 ms timeout ends it long before, even on a busy machine.
    expect((await failure(() => c.call('test.sleep', 60_000))).code).toBe('XAPI_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect((await failure(() => c.call('test.drop'))).code).toBe('XAPI_TRANSPORT');
    expect((await c.getAllRecords('VM')).size).toBe(3);
  });
});

describe('parseTaskResult', () => {
  it('reads empty, bare-ref and XML-RPC results', () => {
    expect(parseTaskResult('')).toBe('');
    expect(parseTaskResult('OpaqueRef:abc')).toBe('OpaqueRef:abc');
    expect(parseTaskResult('<value>OpaqueRef:abc</value>')).toBe('OpaqueRef:abc');
    expect(
      parseTaskResult(
        '<value><array><data><value>a</value><value><dateTime.iso8601>20240102T03:04:05Z</dateTime.iso8601></value></data></array></value>',
      ),
    ).toEqual(['a', '20240102T03:04:05Z']);
    expect(() => parseTaskResult('<value><bogus/></value>')).toThrow(XapiError);
  });
});

describe('connections', () => {
  it.each(['jsonrpc', 'xmlrpc'] as const)(
    'sends a call again when a kept-alive socket was closed under it (%s)',
    async (transport) => {
      const f = await fake();
      const c = await connect(f, { transport });
      f.dropReusedOnce = true;
      expect((await c.getAllRecords('VM')).size).toBe(3);
      expect(f.dropReusedOnce).toBe(false);
      expect(f.connections).toBe(2);
      // a call that may change something is not sent twice
      f.dropReusedOnce = true;
      expect((await failure(() => c.call('test.echo', 'once'))).code).toBe('XAPI_TRANSPORT');
      expect(f.dropReusedOnce).toBe(false);
      expect(f.rpcCalls().filter((m) => m === 'test.echo')).toHaveLength(0);
    },
  );

  it('times out a silent transfer and cancels one that has not started', async () => {
    const f = await fake();
    const c = await connect(f, { timeoutMs: 5_000 });
    f.rawVdis.set('OpaqueRef:vdi', randomBytes(100_000));
    f.stallRaw = true;
    const t0 = Date.now();
    const e = await failure(async () => {
      for await (const _ of await c.exportRawVdi('OpaqueRef:vdi', { timeoutMs: 200 })) {
        // the first chunk arrives, then nothing
      }
    });
    expect(e.code).toBe('XAPI_TIMEOUT');
    // The transfer stalls for ever: the bound only needs to be finite, and generous under load.
    expect(Date.now() - t0).toBeLessThan(30_000);
    const ac = new AbortController();
    ac.abort();
    expect((await failure(() => c.dumpDatabase({ signal: ac.signal }))).code).toBe(
      'XAPI_CANCELLED',
    );
    expect(f.tasks.size).toBe(0);
  });
});

describe('transport selection', () => {
  it('auto uses JSON-RPC when present', async () => {
    const f = await fake();
    const c = await connect(f);
    expect(c.transport).toBe('jsonrpc');
  });

  it('auto falls back to XML-RPC when /jsonrpc is 404', async () => {
    const f = await fake({ noJsonRpc: true });
    const c = await connect(f);
    expect(c.transport).toBe('xmlrpc');
    expect(f.log.map((l) => l.url).slice(0, 2)).toEqual(['/jsonrpc', '/']);
    expect((await c.getAllRecords('VM')).size).toBe(3);
  });

  it('rejects a JSON-RPC answer with another content-type', async () => {
    const f = await fake({ jsonContentType: 'application/json; charset=utf-8' });
    expect((await failure(() => connect(f, { transport: 'jsonrpc' }))).code).toBe('XAPI_PROTOCOL');
  });

  it('parses JSON-RPC v1 errors', async () => {
    const f = await fake({ jsonV1Errors: true });
    const c = await connect(f, { transport: 'jsonrpc' });
    const e = await failure(() => c.call('VM.get_record', 'OpaqueRef:x'));
    expect(e.code).toBe('HANDLE_INVALID');
    expect(e.params).toEqual(['VM', 'OpaqueRef:x']);
  });

  it('reports a refused connection as XAPI_TRANSPORT', async () => {
    const f = await new FakeXapi().start();
    const url = f.url;
    await f.stop();
    const e = await failure(() =>
      XapiClient.connect({ url, username: 'root', password: PASSWORD }),
    );
    expect(e.code).toBe('XAPI_TRANSPORT');
  });

  it('reports a non-XAPI server as XAPI_PROTOCOL or XAPI_TRANSPORT', async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>hello</body></html>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const e = await failure(() =>
        XapiClient.connect({ url, username: 'root', password: PASSWORD }),
      );
      expect(e.code).toBe('XAPI_PROTOCOL');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses bad options', async () => {
    const base = { username: 'root', password: PASSWORD };
    expect((await failure(() => XapiClient.connect({ ...base, url: 'ftp://x' }))).code).toBe(
      'XAPI_INVALID_ARGUMENT',
    );
    expect(
      (await failure(() => XapiClient.connect({ ...base, url: `https://root:${PASSWORD}@x` })))
        .code,
    ).toBe('XAPI_INVALID_ARGUMENT');
    expect(
      (
        await failure(() =>
          XapiClient.connect({ ...base, url: 'https://x', tls: { fingerprint: 'zz' } }),
        )
      ).code,
    ).toBe('XAPI_INVALID_ARGUMENT');
  });
});
