import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { type Simulator, startSimulator } from '@xsmeta/xapi-sim';
import { describe, expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { capture, pool, withEnv } from './support.js';

type Vm = {
  uuid: string;
  name_label: string;
  is_a_template: boolean;
  is_control_domain: boolean;
  is_a_snapshot: boolean;
  is_default_template?: boolean;
  other_config: Record<string, string>;
  VBDs: string[];
  VIFs: string[];
};

async function records(url: string) {
  const x = await XapiClient.connect({ url, username: 'root', password: 'xsmeta' });
  const out: Record<string, unknown> = {};
  for (const cls of ['VM', 'VBD', 'VIF', 'VDI', 'SR', 'network'])
    out[cls] = Object.fromEntries(await x.getAllRecords(cls));
  await x.logout();
  return out as {
    VM: Record<string, Vm>;
    VDI: Record<string, { uuid: string; SR: string }>;
    SR: Record<string, { uuid: string; name_label: string }>;
  } & Record<string, Record<string, unknown>>;
}

describe('restore after the disaster (--fresh-pool)', () => {
  it("dry run changes nothing; -m sr restores exactly the SR's VMs; -m all brings back every VM; again needs -f", async () => {
    const p = await pool({ vms: 10 });
    const before = await records(p.sim.url);
    const userVms = Object.values(before.VM).filter(
      (v) =>
        !v.is_control_domain &&
        !v.is_a_snapshot &&
        !(v.is_a_template && v.other_config.default_template === 'true'),
    );
    let srUuid = '';
    await withEnv(p.env, async () => {
      expect(await xeBackup(['-c'], capture())).toBe(0);
      const probe = capture();
      await xeRestore(['-p'], probe);
      expect(probe.stdout).toHaveLength(1);
      const now = await records(p.sim.url);
      const vdi = Object.values(now.VDI).find((v) => v.uuid === probe.stdout[0])!;
      srUuid = now.SR[vdi.SR]!.uuid;
    });
    await p.sim.close();
    const sim: Simulator = await startSimulator({ stateDir: join(p.dir, 'sim'), freshPool: true });
    const env = { ...sim.env, XSMETA_STATE_DIR: p.env.XSMETA_STATE_DIR! };
    await withEnv(env, async () => {
      const untouched = await records(sim.url);
      const dry = capture();
      expect(await xeRestore(['-u', srUuid, '-n', '-y'], dry)).toBe(0);
      expect(dry.stdout.at(-1)).toBe(`Restored ${userVms.length} VM(s), and 0 error(s)`);
      expect(await records(sim.url)).toEqual(untouched);

      // -m sr: exactly the VMs with a disk on that SR.
      const onSr = userVms.filter((v) =>
        v.VBDs.some((b) => {
          const vbd = before.VBD?.[b] as { VDI: string } | undefined;
          const vdi = vbd && before.VDI[vbd.VDI];
          return vdi && before.SR[vdi.SR]?.uuid === srUuid;
        }),
      );
      const sr = capture();
      expect(await xeRestore(['-u', srUuid, '-m', 'sr', '-y'], sr)).toBe(0);
      expect(sr.stdout.at(-1)).toBe(`Restored ${onSr.length} VM(s), and 0 error(s)`);
      const mid = Object.values((await records(sim.url)).VM).filter((v) => !v.is_control_domain);
      expect(mid.map((v) => v.uuid).sort()).toEqual(onSr.map((v) => v.uuid).sort());

      // -m all: everything else fails as existing (not newer), the rest comes back...
      const all = capture();
      expect(await xeRestore(['-u', srUuid, '-m', 'all', '-y'], all)).toBe(onSr.length);
      expect(all.stdout.at(-1)).toBe(
        `Restored ${userVms.length - onSr.length} VM(s), and ${onSr.length} error(s)`,
      );
      // ...and with -f every VM is replaced.
      const forced = capture();
      expect(await xeRestore(['-u', srUuid, '-y', '-f'], forced)).toBe(0);
      const after = await records(sim.url);
      const back = Object.values(after.VM).filter((v) => !v.is_control_domain);
      expect(
        back.map((v) => `${v.uuid} ${v.name_label} ${v.VBDs.length} ${v.VIFs.length}`).sort(),
      ).toEqual(
        userVms.map((v) => `${v.uuid} ${v.name_label} ${v.VBDs.length} ${v.VIFs.length}`).sort(),
      );
      // SR names came back from SRMETA.
      expect(
        Object.values(after.SR)
          .map((s) => s.name_label)
          .sort(),
      ).toEqual(
        Object.values(before.SR)
          .map((s) => s.name_label)
          .sort(),
      );
    });
    await sim.close();
  }, 300_000);

  it('a VM whose disk is missing fails alone with VDI_LOCATION_MISSING; -x other VDI is refused; -l lists dates', async () => {
    const p = await pool({ vms: 6 });
    await withEnv(p.env, async () => {
      expect(await xeBackup(['-c'], capture())).toBe(0);
      const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
      const vms = [...(await x.getAllRecords<Vm>('VM')).values()].filter(
        (v) =>
          !v.is_control_domain && !v.is_a_snapshot && v.other_config.default_template !== 'true',
      );
      const victim = vms[0]!;
      // Delete the VM, then one of its disks: the restore cannot find that disk.
      const vmRef = await x.call<string>('VM.get_by_uuid', victim.uuid);
      const vbd = await x.getRecord<{ VDI: string }>('VBD', victim.VBDs[0]!);
      await x.call('VM.destroy', vmRef);
      await x.call('VDI.destroy', vbd.VDI);
      for (const v of vms.slice(1))
        await x.call('VM.destroy', await x.call<string>('VM.get_by_uuid', v.uuid));
      await x.logout();
      const io = capture();
      const status = await xeRestore(['-y'], io);
      expect(status).toBe(1);
      expect(io.stdout.find((l) => l.includes(victim.uuid))).toMatch(/VDI_LOCATION_MISSING/);
      expect(io.stdout.at(-1)).toMatch(/Restored \d+ VM\(s\), and 1 error\(s\)/);
      const refused = capture();
      expect(await xeRestore(['-x', '00000000-0000-0000-0000-000000000001', '-n'], refused)).toBe(
        1,
      );
      expect(refused.stderr[0]).toMatch(/only the SR's own backup VDI/);
      const l = capture();
      expect(await xeRestore(['-l'], l)).toBe(0);
      expect(l.stdout[0]).toMatch(/^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/);
      const unknown = capture();
      expect(await xeRestore(['-d', '1999-01-01-00-00-00', '-n'], unknown)).toBe(1);
      expect(unknown.stderr[0]).toContain(`available: ${l.stdout[0]}`);
    });
    await p.close();
  }, 300_000);
});
