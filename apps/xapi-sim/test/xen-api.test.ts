import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
// Xen Orchestra's client, an independent implementation of the XAPI protocol.
import { createClient } from 'xen-api';
import { startSimulator } from '../src/index.js';

type XoClient = {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  call<T>(method: string, ...args: unknown[]): Promise<T>;
  getResource(
    path: string,
    opts: { query: Record<string, string> },
  ): Promise<{ body: { arrayBuffer(): Promise<ArrayBuffer> } }>;
};

for (const transport of ['json-rpc', 'xml-rpc'] as const) {
  it(`Xen Orchestra's xen-api client (${transport}) connects, lists VMs and fetches a metadata export`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xapi-sim-xo-'));
    const sim = await startSimulator({ stateDir: dir, vms: 5, seed: 11 });
    const xo = createClient({
      url: sim.url,
      auth: { user: 'root', password: 'xsmeta' },
      transport,
      allowUnauthorized: true,
    }) as unknown as XoClient;
    try {
      await xo.connect();
      const vms =
        await xo.call<
          Record<string, { uuid: string; is_a_template: boolean; is_control_domain: boolean }>
        >('VM.get_all_records');
      const guests = Object.values(vms).filter((v) => !v.is_a_template && !v.is_control_domain);
      expect(guests).toHaveLength(5);
      const res = await xo.getResource('/export_metadata', { query: { uuid: guests[0]!.uuid } });
      const tar = new Uint8Array(await res.body.arrayBuffer());
      expect(new TextDecoder().decode(tar.subarray(0, 7))).toBe('ova.xml');
      expect(new TextDecoder().decode(tar)).toContain(guests[0]!.uuid);
    } finally {
      await xo.disconnect().catch(() => {});
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}
