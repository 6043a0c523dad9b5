/** What a real pool does that the simulator's defaults do not: each case from xapi's sources. */
import { XapiClient } from '@xsmeta/xapi';
import { describe, expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture, pool, withEnv } from './support.js';

type R = Record<string, unknown>;

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
