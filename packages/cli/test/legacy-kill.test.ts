import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { built } from './bins.js';
import {
  countVdis,
  legacyImage,
  poolVms,
  scannedLegacyImage,
  sha,
  vmsAndSr,
  xapiOf,
} from './legacy-image.js';
import { allEvents, capture, devicesLeft, pool, withEnv } from './support.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;

it.skipIf(!built)(
  'a legacy convert SIGKILLed while its copy is plugged leaves an incomplete copy; the next convert removes it and its VBD (needs dist)',
  async () => {
    let onLog: (line: string) => void = () => {};
    const p = await pool({ vms: 3, srs: 1, log: (line) => onLog(line) });
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const { vms, sr } = await vmsAndSr(x);
    // Upstream's ext3 on the SR's own backup VDI: converting it copies it first.
    await scannedLegacyImage(
      x,
      vms,
      sr,
      '2024-01-07-02-00-00',
      join(p.dir, 'sim', 'sr', sr, `${backupVdiUuid(sr)}.img`),
    );
    const vdisBefore = (await x.getAllRecords('VDI')).size;
    const state = async () => {
      const vdis = [...(await x.getAllRecords<{ name_label: string }>('VDI')).values()].filter(
        (v) => v.name_label.endsWith('(incomplete copy)'),
      );
      const vbds = [
        ...(
          await x.getAllRecords<{
            other_config: Record<string, string>;
            currently_attached: boolean;
          }>('VBD')
        ).values(),
      ].filter((v) => v.other_config['xsmeta-attach'] === 'true');
      return { copies: vdis.length, plugged: vbds.filter((v) => v.currently_attached).length };
    };
    const child = spawn(process.execPath, [BIN, 'legacy', 'convert', '--sr', sr], {
      env: { ...process.env, ...p.env },
      stdio: 'ignore',
    });
    const exited = new Promise<NodeJS.Signals | null>((r) =>
      child.once('exit', (_code, sig) => r(sig)),
    );
    // Killed the moment the pool plugs the copy (the second plug after the copy is created:
    // the original read-only, then the copy read-write), before the run hears of it.
    let created = false;
    let plugs = 0;
    onLog = (line) => {
      if (line.startsWith('VDI.create')) created = true;
      else if (created && line.startsWith('VBD.plug') && ++plugs === 2) child.kill('SIGKILL');
    };
    expect(await exited).toBe('SIGKILL');
    onLog = () => {};
    // What the dead run left: the unfinished copy, plugged.
    expect(await state()).toMatchObject({ copies: 1 });
    expect((await state()).plugged).toBeGreaterThanOrEqual(1);
    await withEnv(p.env, async () => {
      const io = capture();
      expect(await xsmeta(['legacy', 'convert', '--sr', sr], io), io.stderr.join('\n')).toBe(0);
      expect(io.stderr.join('\n')).toMatch(
        /Removed VDI [0-9a-f-]{36}, an unfinished copy a conversion that died left behind\./,
      );
    });
    // Nothing of the dead run is left: no unfinished copy, no VBD, no device; the one copy
    // kept is this run's verified one.
    expect(await state()).toEqual({ copies: 0, plugged: 0 });
    expect((await x.getAllRecords('VDI')).size).toBe(vdisBefore + 1);
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
    await x.logout();
    await p.close();
  },
  60_000,
);

it.skipIf(!built)(
  'SIGTERM during a legacy restore: it stops, unplugs everything and records the run as interrupted (needs dist)',
  async () => {
    let onLog: (line: string) => void = () => {};
    const p = await pool({ vms: 40, srs: 1, log: (line) => onLog(line) });
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const { vms, sr } = await vmsAndSr(x);
    const vdi = '5a1e9b0e-0000-4000-8000-00000000000a';
    await scannedLegacyImage(
      x,
      vms,
      sr,
      '2024-01-07-02-00-00',
      join(p.dir, 'sim', 'sr', sr, `${vdi}.img`),
    );
    const child = spawn(
      process.execPath,
      [
        new URL('../bin/xe-restore-metadata.js', import.meta.url).pathname,
        '-o',
        '-u',
        sr,
        '-x',
        vdi,
        '-y',
        '-f',
      ],
      { env: { ...process.env, ...p.env }, stdio: 'ignore' },
    );
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // Signalled as the first import begins (its transfer task is made).
    let signalledAt = 0;
    onLog = (line) => {
      if (line.startsWith('task.create') && signalledAt === 0) {
        signalledAt = performance.now();
        child.kill('SIGTERM');
      }
    };
    expect(await exited).toBe(143);
    const took = performance.now() - signalledAt;
    onLog = () => {};
    const vbds = [
      ...(await x.getAllRecords<{ other_config: Record<string, string> }>('VBD')).values(),
    ].filter((v) => v.other_config['xsmeta-attach'] === 'true');
    expect(vbds).toEqual([]);
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
    await withEnv(p.env, async () => {
      const types = (await allEvents(p.env.XSMETA_STATE_DIR!)).map((e) => e.type);
      expect(types).toContain('RestoreInterrupted');
    });
    // A generous bound (the clean-up is a few calls): far below the minute it may take at most.
    expect(took).toBeLessThan(30_000);
    await x.logout();
    await p.close();
  },
  90_000,
);

it.skipIf(!built)(
  'a signal while legacy convert copies the disk (or creates the copy) removes the unfinished copy and its VBDs; the legacy disk is untouched (needs dist)',
  async () => {
    let onLog: (line: string) => void = () => {};
    const p = await pool({ vms: 3, srs: 1, log: (line) => onLog(line) });
    const { sim, env, dir } = p;
    const x = await xapiOf(sim.url);
    const vms = await poolVms(x);
    const [srRec] = (await x.getAllRecords<{ uuid: string }>('SR')).values();
    const sr = srRec!.uuid;
    const { img, tree } = await legacyImage(
      x,
      vms,
      sr,
      ['2024-01-07-02-00-00'],
      join(dir, 'sim', 'sr', sr, `${backupVdiUuid(sr)}.img`),
    );
    await x.call('SR.scan', await x.call<string>('SR.get_by_uuid', sr));
    const original = sha(img);
    const vdisBefore = (await x.getAllRecords('VDI')).size;
    const unfinished = async () =>
      [...(await x.getAllRecords<{ name_label: string }>('VDI')).values()].some((v) =>
        v.name_label.endsWith('(incomplete copy)'),
      );
    for (const when of ['copying', 'creating'] as const) {
      // Each call waits 40 ms: the copy takes long enough to be caught in the middle.
      sim.faults.set({ latencyMs: 40 });
      const child = spawn(
        process.execPath,
        [new URL('../bin/xsmeta.js', import.meta.url).pathname, 'legacy', 'convert', '--sr', sr],
        { env: { ...process.env, ...env }, stdio: 'ignore' },
      );
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      if (when === 'creating') {
        // The pool has made the VDI; the answer is not back yet: VDI.create is in flight.
        onLog = (line) => {
          if (line.startsWith('VDI.create')) child.kill('SIGTERM');
        };
      } else {
        await until(unfinished, 'the unfinished copy');
        expect(await unfinished()).toBe(true);
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(143);
      onLog = () => {};
      sim.faults.clear();
      expect(await unfinished()).toBe(false);
      expect(await xapiOf(sim.url).then(countVdis)).toEqual([vdisBefore, 0]);
      expect(sha(img)).toBe(original);
    }
    await x.logout();
    rmSync(tree, { recursive: true, force: true });
    await p.close();
  },
  300_000,
);
