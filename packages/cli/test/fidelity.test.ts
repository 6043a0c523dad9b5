/** What a real pool does that the simulator's defaults do not: each case from xapi's sources. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { XapiClient } from '@xsmeta/xapi';
import { describe, expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

type R = Record<string, unknown>;

/** An HTTP relay in front of the simulator that records each request's path and query. */
async function recorder(
  target: string,
): Promise<{ url: string; seen: URL[]; close(): Promise<void> }> {
  const seen: URL[] = [];
  const to = new URL(target);
  const server = http.createServer((req, res) => {
    seen.push(new URL(req.url ?? '/', 'http://x'));
    const up = http.request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('the metadata export the backup asks for', () => {
  it('leaves snapshots out, as `xe vm-export --metadata` does (cli_operations.ml)', async () => {
    const p = await pool({ vms: 3 });
    const relay = await recorder(p.env.XSMETA_URL!);
    await withEnv({ ...p.env, XSMETA_URL: relay.url }, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    });
    const exports = relay.seen.filter((u) => u.pathname === '/export_metadata');
    expect(exports.length).toBeGreaterThan(0);
    for (const u of exports) expect(u.searchParams.get('export_snapshots')).toBe('false');
    await relay.close();
    await p.close();
  }, 60_000);
});

describe('a VBD that cannot be removed from the control domain', () => {
  it('is reported with what is left plugged and the xe lines that remove it', async () => {
    const p = await pool({ vms: 2 });
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
      // On the control domain unplug_force is unplug (ocaml/xapi/xapi_vbd.ml): both fail.
      p.sim.faults.set({ fail: [{ match: 'VBD.unplug*', code: 'SR_BACKEND_FAILURE_46' }] });
      const io = capture();
      expect(await xsmeta(['backup'], io)).toBe(1);
      p.sim.faults.clear();
      const xapi = await XapiClient.connect({
        url: p.env.XSMETA_URL!,
        username: 'root',
        password: p.env.XSMETA_PASSWORD!,
      });
      const left = [...(await xapi.getAllRecords<R>('VBD')).entries()].filter(
        ([, v]) => (v.other_config as Record<string, string>)['xsmeta-attach'] === 'true',
      );
      expect(left).toHaveLength(1);
      const [ref, vbd] = left[0]!;
      expect(vbd.currently_attached).toBe(true);
      expect(io.stderr).toHaveLength(1);
      const line = io.stderr[0]!;
      expect(line).toContain('VBD_LEFT_BEHIND');
      expect(line).toContain('SR_BACKEND_FAILURE_46');
      expect(line).toContain(
        `'xe vbd-unplug uuid=${vbd.uuid as string}' then 'xe vbd-destroy uuid=${vbd.uuid as string}'`,
      );
      await xapi.call('VBD.unplug', ref);
      await xapi.call('VBD.destroy', ref);
      await xapi.logout();
    });
    await p.close();
  }, 60_000);
});
