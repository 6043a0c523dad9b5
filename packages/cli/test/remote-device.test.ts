// The remote BlockDevice (src/remote/device.ts) against the simulated pool: the port's
// behaviour (vdi-store's shared BlockDevice suite), the ring on it, what it moves, and a PUT
// cut part-way leaving the ring as before.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ring } from '@xsmeta/vdi-store';
import { blockDeviceSuite } from '@xsmeta/vdi-store/test-support';
import { VHD_SECTOR, XapiClient } from '@xsmeta/xapi';
import { type Simulator, startSimulator } from '@xsmeta/xapi-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payload } from '../../../test-support/payload.js';
import { newVdi as newTestVdi } from '../../../test-support/xapi.js';
import { RemoteDevice } from '../src/remote/device.js';

let sim: Simulator;
let dir: string;
let c: XapiClient;
const MiB = 1024 * 1024;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remote-dev-'));
  sim = await startSimulator({ stateDir: dir, vms: 2, srs: 1, seed: 5 });
  c = await XapiClient.connect({ url: sim.url, username: 'root', password: 'xsmeta' });
});

afterAll(async () => {
  await c.logout();
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

const newVdi = (size: number) => newTestVdi(c, { size, name: 'remote device test' });

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const label = (s: string) => new TextEncoder().encode(s);

const refs = new WeakMap<RemoteDevice, string>();

/** The VDI's bytes as the pool holds them, read raw past any device. */
async function vdiBytes(ref: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of await c.exportRawVdi(ref, { format: 'raw' })) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

// The shared suite: each case gets a fresh VDI of the image's size (a whole number of
// sectors), filled through a raw PUT, and looks at it through a raw GET.
blockDeviceSuite(
  'RemoteDevice over export_raw_vdi/import_raw_vdi',
  { writable: true, outOfRangeCode: 'RING_TRUNCATED', sectorSize: VHD_SECTOR },
  {
    async open(image, { readOnly }) {
      const v = await newVdi(image.length);
      await c.importRawVdi(v.ref, image, { format: 'raw' });
      const dev = await RemoteDevice.open(c, v.ref, { readOnly });
      refs.set(dev, v.ref);
      return dev;
    },
    bytes: (dev) => vdiBytes(refs.get(dev)!),
  },
);

describe('remote device', () => {
  it('refuses a negative range', async () => {
    const v = await newVdi(VHD_SECTOR);
    const dev = await RemoteDevice.open(c, v.ref);
    await expect(dev.read(-1, 2)).rejects.toMatchObject({ code: 'RING_INVALID_ARGUMENT' });
    await expect(dev.write(-1, new Uint8Array(2))).rejects.toMatchObject({
      code: 'RING_INVALID_ARGUMENT',
    });
    await dev.close();
  });

  it('holds a ring: list reads only the start of the disk, an append sends only changed blocks', async () => {
    const v = await newVdi(64 * MiB);
    const dev = await RemoteDevice.open(c, v.ref);
    const ring = await Ring.format(dev, { vdiUuid: v.uuid, srUuid: v.srUuid, maxRecords: 8 });
    for (let i = 1; i <= 12; i++)
      await ring.append({ label: label(`b${i}`), data: payload(i, 5 * MiB + i * 1000) });
    const before = { ...dev.stats };
    await ring.append({ label: label('small'), data: payload(99, 10_000) });
    // one PUT for the record's block, one for the root's: never the whole disk
    expect(dev.stats.imports - before.imports).toBe(2);
    expect(dev.stats.bytesWritten - before.bytesWritten).toBeLessThan(5 * MiB);
    await ring.close();

    const ro = await RemoteDevice.open(c, v.ref, { readOnly: true });
    const listed = await Ring.open(ro, { readOnly: true, rootsOnly: true });
    expect(listed.list().map((r) => r.seq)).toEqual([13, 12, 11, 10, 9, 8, 7, 6]);
    await listed.close();
    expect(ro.stats.bytesRead).toBeLessThan(2.5 * MiB);

    const rv = await RemoteDevice.open(c, v.ref, { readOnly: true });
    const ring2 = await Ring.open(rv, { readOnly: true });
    expect(sha(await ring2.readAll(12))).toBe(sha(payload(12, 5 * MiB + 12_000)));
    expect((await ring2.verify()).records.every((r) => r.ok)).toBe(true);
    await ring2.close();
    // verify streams the disk once, not once per record
    expect(rv.stats.exports).toBe(1);
  });

  it('keeps at most cacheBlocks clean blocks, reading again what it dropped', async () => {
    const v = await newVdi(24 * MiB);
    const w = await RemoteDevice.open(c, v.ref);
    const ring = await Ring.format(w, { vdiUuid: v.uuid, srUuid: v.srUuid });
    for (let i = 1; i <= 4; i++)
      await ring.append({ label: label(`r${i}`), data: payload(i, 4 * MiB + i) });
    await ring.close();
    const dev = await RemoteDevice.open(c, v.ref, { readOnly: true, cacheBlocks: 3 });
    const r = await Ring.open(dev, { readOnly: true, rootsOnly: true });
    // verify reads the records in disk order: one export stream, front to back.
    expect((await r.verify()).records.every((x) => x.ok)).toBe(true);
    expect(dev.stats.exports).toBe(1);
    expect(dev.stats.peakBlocks).toBeLessThanOrEqual(4);
    // Record 1 was streamed past and dropped from the cache: it streams again.
    expect(sha(await r.readAll(1))).toBe(sha(payload(1, 4 * MiB + 1)));
    expect(dev.stats.exports).toBeGreaterThan(1);
    expect(sha(await r.readAll(4))).toBe(sha(payload(4, 4 * MiB + 4)));
    expect(dev.stats.peakBlocks).toBeLessThanOrEqual(4);
    await r.close();
  });

  for (const which of ['record', 'root'] as const) {
    it(`a PUT of the ${which} cut part-way leaves the ring as it was`, async () => {
      const v = await newVdi(32 * MiB);
      const dev = await RemoteDevice.open(c, v.ref);
      const ring = await Ring.format(dev, { vdiUuid: v.uuid, srUuid: v.srUuid });
      await ring.append({ label: label('one'), data: payload(1, 3 * MiB) });
      await ring.close();

      const dev2 = await RemoteDevice.open(c, v.ref);
      const ring2 = await Ring.open(dev2);
      sim.faults.set({
        cut: [{ match: '/import_raw_vdi', afterBytes: 4096, after: which === 'record' ? 0 : 1 }],
      });
      try {
        await expect(
          ring2.append({ label: label('two'), data: payload(2, 3 * MiB) }),
        ).rejects.toMatchObject({ code: 'RING_IO' });
      } finally {
        sim.faults.clear();
      }
      await dev2.close().catch(() => {});

      const ro = await RemoteDevice.open(c, v.ref, { readOnly: true });
      const after = await Ring.open(ro, { readOnly: true });
      const seen = after.list().map((r) => [r.seq, new TextDecoder().decode(r.label)]);
      if (which === 'record') {
        // The root never went out: the ring is exactly as before.
        expect(seen).toEqual([[1, 'one']]);
        expect((await after.verify()).records).toEqual([{ seq: 1, ok: true }]);
      } else {
        // The record's PUT had succeeded; only the root's was cut. The ring recovers a whole
        // record from its header as after a local crash at that point (ring.ts `open`):
        // nothing half-written is visible, and the old record is untouched.
        expect(seen).toEqual([
          [2, 'two'],
          [1, 'one'],
        ]);
        expect((await after.verify()).records).toEqual([
          { seq: 2, ok: true },
          { seq: 1, ok: true },
        ]);
        expect(sha(await after.readAll(1))).toBe(sha(payload(1, 3 * MiB)));
      }
      await after.close();
    });
  }
});
