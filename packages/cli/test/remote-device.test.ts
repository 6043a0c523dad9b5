// The remote BlockDevice (src/remote/device.ts) against the simulated pool: the port's
// behaviour (written as a reusable suite: `blockDeviceBehaviour`), the ring on it, what it
// moves, and a PUT cut part-way leaving the ring as before.
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BlockDevice, Ring } from '@xsmeta/vdi-store';
import { type PoolRecord, type SrRecord, type VdiRecord, XapiClient } from '@xsmeta/xapi';
import { type Simulator, startSimulator } from '@xsmeta/xapi-sim';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

async function newVdi(size: number): Promise<{ ref: string; uuid: string; sr: string }> {
  const [pool] = (await c.getAllRecords<PoolRecord>('pool')).values();
  const ref = await c.call<string>('VDI.create', {
    name_label: 'remote device test',
    name_description: '',
    SR: pool!.default_SR,
    virtual_size: size,
    type: 'user',
    sharable: false,
    read_only: false,
    other_config: {},
    xenstore_data: {},
    sm_config: {},
    tags: [],
  });
  const vdi = await c.getRecord<VdiRecord>('VDI', ref);
  const sr = await c.getRecord<SrRecord>('SR', vdi.SR);
  return { ref, uuid: vdi.uuid, sr: sr.uuid };
}

function payload(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const label = (s: string) => new TextEncoder().encode(s);

/**
 * What any BlockDevice must do. `open(readOnly)` gives a device on the same, initially zeroed
 * disk of at least 8 MiB each time it is called.
 */
export function blockDeviceBehaviour(
  name: string,
  open: (readOnly: boolean) => Promise<BlockDevice>,
): void {
  describe(`BlockDevice behaviour: ${name}`, () => {
    it('reads what it wrote, across blocks and unaligned, and keeps the bytes around', async () => {
      const dev = await open(false);
      const a = payload(1, 3 * MiB + 77);
      await dev.write(2 * MiB - 1000, a);
      await dev.write(10, new Uint8Array([1, 2, 3]));
      expect(sha(await dev.read(2 * MiB - 1000, a.length))).toBe(sha(a));
      expect([...(await dev.read(8, 7))]).toEqual([0, 0, 1, 2, 3, 0, 0]);
      await dev.flush();
      await dev.close();
      const again = await open(true);
      expect(sha(await again.read(2 * MiB - 1000, a.length))).toBe(sha(a));
      expect([...(await again.read(8, 7))]).toEqual([0, 0, 1, 2, 3, 0, 0]);
      expect((await again.read(2 * MiB - 1001, 1))[0]).toBe(0);
      await again.close();
    });

    it('refuses a range past the end or negative, and writes on a read-only device', async () => {
      const dev = await open(true);
      await expect(dev.read(dev.size - 1, 2)).rejects.toMatchObject({ code: 'RING_TRUNCATED' });
      await expect(dev.read(-1, 2)).rejects.toMatchObject({ code: 'RING_INVALID_ARGUMENT' });
      await expect(dev.write(0, new Uint8Array(1))).rejects.toMatchObject({
        code: 'RING_READ_ONLY',
      });
      expect(dev.readOnly).toBe(true);
      await dev.close();
    });
  });
}

describe('remote device', () => {
  let vdi: { ref: string } | undefined;
  blockDeviceBehaviour('RemoteDevice over export_raw_vdi/import_raw_vdi', async (readOnly) => {
    vdi ??= await newVdi(8 * MiB);
    return RemoteDevice.open(c, vdi.ref, { readOnly });
  });

  it('holds a ring: list reads only the start of the disk, an append sends only changed blocks', async () => {
    const v = await newVdi(64 * MiB);
    const dev = await RemoteDevice.open(c, v.ref);
    const ring = await Ring.format(dev, { vdiUuid: v.uuid, srUuid: v.sr, maxRecords: 8 });
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
    const ring = await Ring.format(w, { vdiUuid: v.uuid, srUuid: v.sr });
    for (let i = 1; i <= 4; i++)
      await ring.append({ label: label(`r${i}`), data: payload(i, 4 * MiB + i) });
    await ring.close();
    const dev = await RemoteDevice.open(c, v.ref, { readOnly: true, cacheBlocks: 3 });
    const r = await Ring.open(dev, { readOnly: true, rootsOnly: true });
    // verify reads newest first: each older record was streamed past, so streams again.
    expect((await r.verify()).records.every((x) => x.ok)).toBe(true);
    expect(dev.stats.exports).toBeGreaterThan(1);
    expect(dev.stats.peakBlocks).toBeLessThanOrEqual(4);
    expect(sha(await r.readAll(1))).toBe(sha(payload(1, 4 * MiB + 1)));
    expect(sha(await r.readAll(4))).toBe(sha(payload(4, 4 * MiB + 4)));
    expect(dev.stats.peakBlocks).toBeLessThanOrEqual(4);
    await r.close();
  });

  for (const which of ['record', 'root'] as const) {
    it(`a PUT of the ${which} cut part-way leaves the ring as it was`, async () => {
      const v = await newVdi(32 * MiB);
      const dev = await RemoteDevice.open(c, v.ref);
      const ring = await Ring.format(dev, { vdiUuid: v.uuid, srUuid: v.sr });
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
