// The client's HTTP handlers (export/import of metadata, database dump and restore, raw VDI
// transfers) against the fake XAPI.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanUp, connect, failure, fake } from './support/clients.js';

afterEach(cleanUp);

describe('HTTP handlers', () => {
  it('exportMetadata by uuid and by ref: one GET with the session, no task of ours', async () => {
    const f = await fake();
    const c = await connect(f);
    const [ref, vm] = [...f.vms.entries()][1]!;
    const before = f.rpcCalls().length;
    const a = await c.exportMetadata({ uuid: String(vm.uuid) });
    const b = await c.exportMetadata({ ref });
    expect(Buffer.from(a).toString()).toContain(String(vm.name_label));
    expect(Buffer.from(b)).toEqual(Buffer.from(a));
    const gets = f.log.filter((l) => l.url === '/export_metadata');
    expect(gets).toHaveLength(2);
    expect(gets[0]!.query.uuid).toBe(vm.uuid);
    expect(gets[1]!.query.ref).toBe(ref);
    expect(gets[0]!.query.task_id).toBeUndefined();
    // xapi makes the GET's task itself: no task.create / task.destroy round trips
    expect(f.rpcCalls().slice(before)).toEqual([]);
    expect(f.tasks.size).toBe(0);
  });

  it('exportMetadata reports the pool error recorded in the task', async () => {
    const f = await fake();
    const c = await connect(f);
    const e = await failure(() => c.exportMetadata({ uuid: 'no-such-uuid' }));
    expect(e.code).toBe('UUID_INVALID');
    expect(e.params).toEqual(['VM', 'no-such-uuid']);
    // the failed GET was asked again with a task of ours, whose error names the cause
    const gets = f.log.filter((l) => l.url === '/export_metadata');
    expect(gets).toHaveLength(2);
    expect(gets[0]!.query.task_id).toBeUndefined();
    expect(gets[1]!.query.task_id).toMatch(/^OpaqueRef:/);
    expect(f.tasks.size).toBe(0);
  });

  it('runs parallel exports over a bounded set of sockets', async () => {
    const f = await fake();
    const c = await connect(f, { maxSockets: 4 });
    const refs = [...f.vms.keys()];
    const out = await Promise.all(
      Array.from({ length: 24 }, (_, i) => c.exportMetadata({ ref: refs[i % refs.length]! })),
    );
    expect(out).toHaveLength(24);
    expect(f.peakOpen).toBeLessThanOrEqual(4);
    expect(f.connections).toBeLessThanOrEqual(8);
  });

  it('importMetadata sends restore/force/dry_run and returns the new VM refs', async () => {
    const f = await fake();
    const c = await connect(f);
    const body = new TextEncoder().encode('tar bytes');
    const refs = await c.importMetadata(body, { force: true });
    expect(refs).toHaveLength(2);
    expect(refs[0]).toMatch(/^OpaqueRef:/);
    const put = f.log.find((l) => l.url === '/import_metadata')!;
    expect(put.query).toMatchObject({ restore: 'true', force: 'true', dry_run: 'false' });
    expect(f.uploads.get('/import_metadata')).toEqual(Buffer.from(body));
    expect(await c.importMetadata(body, { dryRun: true })).toEqual([]);
    const e = await failure(() => c.importMetadata(new TextEncoder().encode('MISSING'), {}));
    expect(e.code).toBe('VDI_LOCATION_MISSING');
    expect(e.params).toEqual(['OpaqueRef:sr', 'loc']);
    expect(f.tasks.size).toBe(0);
  });

  it('dumps and restores the pool database, with dry run', async () => {
    const f = await fake();
    const c = await connect(f);
    const dump = await c.dumpDatabase();
    expect(Buffer.from(dump).toString()).toBe('<database><manifest/></database>');
    let streamed = '';
    for await (const chunk of await c.dumpDatabaseStream())
      streamed += Buffer.from(chunk).toString();
    expect(streamed).toBe('<database><manifest/></database>');
    const next = Buffer.from(
      '<database><manifest><pair key="schema_major_vsn" value="5"/></manifest></database>',
    );
    await c.restoreDatabase(next, { dryRun: true });
    expect(f.database.toString()).toBe('<database><manifest/></database>');
    await c.restoreDatabase(next, { dryRun: false });
    expect(f.database).toEqual(next);
    const e = await failure(() => c.restoreDatabase(Buffer.from('<database/>'), { dryRun: true }));
    expect(e.code).toBe('RESTORE_INCOMPATIBLE_VERSION');
    expect(f.tasks.size).toBe(0);
  });

  it('follows a redirect and keeps session and task', async () => {
    const f = await fake({ redirectDump: true });
    const c = await connect(f);
    expect(Buffer.from(await c.dumpDatabase()).toString()).toContain('<database>');
    const hops = f.log.filter((l) => l.url === '/pool/xmldbdump');
    expect(hops).toHaveLength(2);
    expect(hops[1]!.query.hop).toBe('1');
    expect(hops[1]!.query.task_id).toBe(hops[0]!.query.task_id);
  });

  it('streams raw VDIs both ways', async () => {
    const f = await fake();
    const c = await connect(f);
    const data = randomBytes(1 << 20);
    f.rawVdis.set('OpaqueRef:vdi', Buffer.alloc(0));
    async function* pieces(): AsyncGenerator<Uint8Array> {
      for (let off = 0; off < data.length; off += 100_000) yield data.subarray(off, off + 100_000);
    }
    await c.importRawVdi('OpaqueRef:vdi', pieces(), { length: data.length });
    expect(f.rawVdis.get('OpaqueRef:vdi')?.equals(data)).toBe(true);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of await c.exportRawVdi('OpaqueRef:vdi')) {
      chunks.push(Buffer.from(chunk));
      n++;
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(n).toBeGreaterThan(1);
    const put = f.log.find((l) => l.url === '/import_raw_vdi')!;
    expect(put.query.format).toBe('raw');
    await c.importRawVdi('OpaqueRef:vdi', new Uint8Array([1, 2, 3]), { format: 'vhd' });
    expect(f.rawVdis.get('OpaqueRef:vdi')).toEqual(Buffer.from([1, 2, 3]));
    expect(f.tasks.size).toBe(0);
  });

  it('raw VDI errors: unknown VDI, missing length, early stop, cancellation', async () => {
    const f = await fake();
    const c = await connect(f);
    expect((await failure(() => c.exportRawVdi('OpaqueRef:none'))).code).toBe('HANDLE_INVALID');
    expect((await failure(() => c.importRawVdi('OpaqueRef:none', new Uint8Array(4)))).code).toBe(
      'HANDLE_INVALID',
    );
    async function* one(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(1);
    }
    expect((await failure(() => c.importRawVdi('OpaqueRef:none', one()))).code).toBe(
      'XAPI_INVALID_ARGUMENT',
    );
    f.rawVdis.set('OpaqueRef:big', randomBytes(4 << 20));
    // early stop: the task is destroyed and the client still works
    for await (const _ of await c.exportRawVdi('OpaqueRef:big')) break;
    expect(f.tasks.size).toBe(0);
    // cancellation in the middle of the stream
    const ac = new AbortController();
    const e = await failure(async () => {
      for await (const _ of await c.exportRawVdi('OpaqueRef:big', { signal: ac.signal }))
        ac.abort();
    });
    expect(e.code).toBe('XAPI_CANCELLED');
    expect(f.tasks.size).toBe(0);
    expect((await c.getAllRecords('VM')).size).toBe(3);
  });

  it('reports a download cut short as XAPI_TRANSPORT', async () => {
    const f = await fake();
    const c = await connect(f);
    f.rawVdis.set('OpaqueRef:vdi', randomBytes(200_000));
    f.truncateRaw = true;
    const e = await failure(async () => {
      for await (const _ of await c.exportRawVdi('OpaqueRef:vdi')) {
        // consume
      }
    });
    expect(e.code).toBe('XAPI_TRANSPORT');
    expect(f.tasks.size).toBe(0);
    f.truncateRaw = false;
    expect((await c.getAllRecords('VM')).size).toBe(3);
  });
});
