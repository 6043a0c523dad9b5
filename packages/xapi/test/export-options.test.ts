import { afterEach, describe, expect, it } from 'vitest';
import { type VmRecord, XapiClient } from '../src/index.js';
import { FakeXapi } from './support/fake-xapi.js';

const started: FakeXapi[] = [];
const clients: XapiClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.logout()));
  await Promise.all(started.splice(0).map((f) => f.stop()));
});

describe('GET /export_metadata options (ocaml/xapi/export.ml, metadata_handler)', () => {
  it('sends export_snapshots only when asked, and all=true for the whole pool', async () => {
    const f = await new FakeXapi({ password: 'secret' }).start();
    started.push(f);
    const c = await XapiClient.connect({ url: f.url, username: 'root', password: 'secret' });
    clients.push(c);
    const [uuid] = [...(await c.getAllRecords<VmRecord>('VM')).values()].map((v) => v.uuid);
    await c.exportMetadata({ uuid: uuid! }, { exportSnapshots: false });
    await c.exportMetadata({ uuid: uuid! });
    await c.exportMetadata({ all: true }, { exportSnapshots: false }).catch(() => {});
    const queries = f.log.filter((l) => l.url === '/export_metadata').map((l) => l.query);
    expect(queries[0]).toMatchObject({ uuid, export_snapshots: 'false' });
    expect(queries[1]).not.toHaveProperty('export_snapshots');
    expect(queries[2]).toMatchObject({ all: 'true', export_snapshots: 'false' });
  });
});
