/**
 * The behaviour every `PoolPort` promises, as one suite that each implementation runs: core's
 * in-memory fake and the CLI's adapter over xapi (against the simulated pool). Each case gets a
 * fresh pool from `make`.
 * Not part of the package's API: not built, exported only under the `source` condition.
 */
import { describe, expect, it } from 'vitest';
import type { PoolPort } from '../app/ports.js';

export interface PoolPortUnderTest {
  readonly pool: PoolPort;
  /** Ends what `make` started (a simulated pool, a session). */
  close(): Promise<void>;
}

const UNKNOWN = '00000000-0000-4000-8000-00000000dead';
const MiB = 1024 * 1024;

async function using(
  make: () => Promise<PoolPortUnderTest>,
  fn: (p: PoolPort) => Promise<void>,
): Promise<void> {
  const t = await make();
  try {
    await fn(t.pool);
  } finally {
    await t.close();
  }
}

async function rejects(p: Promise<unknown>): Promise<void> {
  let failed = false;
  await p.catch(() => {
    failed = true;
  });
  expect(failed).toBe(true);
}

export function poolPortSuite(name: string, make: () => Promise<PoolPortUnderTest>): void {
  describe(`PoolPort behaviour: ${name}`, () => {
    it('names the pool and its SRs; the default SR is one of them', () =>
      using(make, async (p) => {
        const info = await p.pool();
        expect(info.uuid).not.toBe('');
        const srs = await p.srs();
        expect(srs.length).toBeGreaterThan(0);
        expect(new Set(srs.map((s) => s.uuid)).size).toBe(srs.length);
        for (const s of srs) expect(s.type).not.toBe('');
        if (info.defaultSrUuid !== null)
          expect(srs.map((s) => s.uuid)).toContain(info.defaultSrUuid);
      }));

    it('derives one backup VDI uuid per SR; creating it makes it findable, on its SR', () =>
      using(make, async (p) => {
        const [a, b] = await p.srs();
        expect(b).toBeDefined();
        expect(p.backupVdiUuid(a!.uuid)).toBe(p.backupVdiUuid(a!.uuid));
        expect(p.backupVdiUuid(a!.uuid)).not.toBe(p.backupVdiUuid(b!.uuid));
        expect(await p.findVdi(UNKNOWN)).toBeNull();
        const want = p.backupVdiUuid(a!.uuid);
        expect(await p.findVdi(want)).toBeNull();
        const made = await p.createBackupVdi(a!.uuid, 8 * MiB);
        expect(made).toMatchObject({ uuid: want, srUuid: a!.uuid });
        expect(made.virtualSize).toBeGreaterThanOrEqual(8 * MiB);
        expect(await p.findVdi(want)).toMatchObject({
          uuid: want,
          srUuid: a!.uuid,
          name: made.name,
        });
        const listed = (await p.srs()).find((s) => s.uuid === a!.uuid)!;
        expect(listed.vdis.map((v) => v.uuid)).toContain(want);
      }));

    it('lists VMs and custom templates, each exported as non-empty metadata; an unknown VM fails', () =>
      using(make, async (p) => {
        const vms = await p.vms();
        expect(vms.length).toBeGreaterThan(0);
        expect(new Set(vms.map((v) => v.uuid)).size).toBe(vms.length);
        for (const vm of vms.slice(0, 3)) {
          expect(Array.isArray(vm.srUuids)).toBe(true);
          expect((await p.exportMetadata(vm.uuid)).length).toBeGreaterThan(0);
        }
        await rejects(p.exportMetadata(UNKNOWN));
        const db = await p.dumpDatabase();
        let dbBytes = 0;
        for await (const c of db instanceof Uint8Array ? [db] : db) dbBytes += c.length;
        expect(dbBytes).toBeGreaterThan(0);
      }));

    it('inventory(), when the port has one, gives exactly what vms() and srs() give', () =>
      using(make, async (p) => {
        if (!p.inventory) return;
        const [sr] = await p.srs();
        // A VDI of ours on an SR: it must show in the SR metadata of both answers.
        await p.createBackupVdi(sr!.uuid, 8 * MiB);
        const both = await p.inventory();
        expect(both.vms).toEqual(await p.vms());
        expect(both.srs).toEqual(await p.srs());
        expect(both.vms.some((v) => v.srUuids.length > 0)).toBe(true);
      }));

    it('vmCount(), when the port has one, bounds every VM that exportAll() holds', () =>
      using(make, async (p) => {
        if (!p.vmCount) return;
        const count = await p.vmCount();
        expect(count).toBeGreaterThanOrEqual((await p.vms()).length);
        if (!p.exportAll) return;
        const all = await p.exportAll();
        try {
          expect(all.size).toBeGreaterThan(0);
          expect(all.size).toBeLessThanOrEqual(count);
          // Without uuids asked, it holds at least every VM a backup takes.
          for (const vm of await p.vms()) expect(all.has(vm.uuid)).toBe(true);
        } finally {
          all.close?.();
        }
      }));

    it('a dry-run import changes nothing, whether it would succeed or not; an empty one fails', () =>
      using(make, async (p) => {
        const before = await p.vms();
        const body = await p.exportMetadata(before[0]!.uuid);
        // The VM is still in the pool: xapi may refuse it (VM_TO_IMPORT_IS_NOT_NEWER_VERSION).
        await p.importMetadata(body, { force: false, dryRun: true }).catch(() => {});
        await rejects(p.importMetadata(new Uint8Array(0), { force: false, dryRun: true }));
        expect(await p.vms()).toEqual(before);
      }));

    it('renames an SR and a VDI', () =>
      using(make, async (p) => {
        const [sr] = await p.srs();
        await p.setSrNames(sr!.uuid, 'renamed SR', 'its description');
        expect((await p.srs()).find((s) => s.uuid === sr!.uuid)).toMatchObject({
          name: 'renamed SR',
          description: 'its description',
        });
        const vdi = await p.createBackupVdi(sr!.uuid, 8 * MiB);
        await p.setVdiNames(vdi.uuid, 'renamed VDI', 'a VDI');
        expect((await p.findVdi(vdi.uuid))!.name).toBe('renamed VDI');
        const listed = (await p.srs()).find((s) => s.uuid === sr!.uuid)!.vdis;
        expect(listed.find((v) => v.uuid === vdi.uuid)).toMatchObject({
          name: 'renamed VDI',
          description: 'a VDI',
        });
      }));

    it('attaches a VDI to a device path and detaches it; it can be attached again', () =>
      using(make, async (p) => {
        const [sr] = await p.srs();
        const vdi = await p.createBackupVdi(sr!.uuid, 8 * MiB);
        const rw = await p.attach(vdi.uuid, { readOnly: false });
        expect(rw.devicePath).not.toBe('');
        await rw.detach();
        const ro = await p.attach(vdi.uuid, { readOnly: true });
        expect(ro.devicePath).not.toBe('');
        await ro.detach();
        await rejects(p.attach(UNKNOWN, { readOnly: true }));
      }));

    it('copies a VDI as a new one on the same SR, under the name given', () =>
      using(make, async (p) => {
        const [sr] = await p.srs();
        const vdi = await p.createBackupVdi(sr!.uuid, 8 * MiB);
        const copy = await p.copyVdi(vdi.uuid, 'kept copy');
        expect(copy.uuid).not.toBe(vdi.uuid);
        expect(copy).toMatchObject({ name: 'kept copy', srUuid: sr!.uuid });
        expect(copy.virtualSize).toBe(vdi.virtualSize);
        expect(await p.findVdi(copy.uuid)).toMatchObject({ uuid: copy.uuid, name: 'kept copy' });
        expect(await p.findVdi(vdi.uuid)).toMatchObject({ uuid: vdi.uuid });
      }));
  });
}
