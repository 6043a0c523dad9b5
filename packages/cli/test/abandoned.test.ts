import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordedEvent } from '@xsmeta/core';
import { XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { openEvents } from '../src/adapters/event-log.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { built } from './bins.js';
import { capture, pool, withEnv } from './support.js';

const BIN = new URL('../bin/xsmeta.js', import.meta.url).pathname;

/** Reads the log until `ok` holds for its events (polling, with a generous bound). */
async function untilLogged(
  stateDir: string,
  ok: (events: RecordedEvent[]) => boolean,
): Promise<RecordedEvent[]> {
  const log = openEvents(stateDir);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const events: RecordedEvent[] = [];
    for await (const e of log.readAll()) events.push(e);
    if (ok(events)) return events;
    if (Date.now() > deadline)
      throw new Error(`the event never reached the log: ${events.map((e) => e.type).join(' ')}`);
    await new Promise((r) => setImmediate(r));
  }
}

const exited = (c: ChildProcess) =>
  new Promise<NodeJS.Signals | null>((r) => c.once('exit', (_code, sig) => r(sig)));

interface Run {
  runId: string;
  kind: string;
  outcome: string;
  endedAt: string | null;
  vmCount: number | null;
  restored: number | null;
  errors: number | null;
  lastEvent: string;
  owner: { pid: number } | null;
}

it.skipIf(!built)(
  'a backup and a restore killed part-way (SIGKILL) show as ABANDONED with what they had done (needs dist)',
  async () => {
    // At a pool call that comes after the event under test was appended, the simulator stops
    // answering (every later call waits far longer than the test): the child can record
    // nothing more. The test then waits to see that event in the log and kills the child
    // (SIGKILL): no timer decides anything.
    let freezeOn: string | null = null;
    let child: ChildProcess | null = null;
    let hold: (() => void) | null = null;
    const p = await pool({
      vms: 12,
      log: (line) => {
        if (freezeOn && line.startsWith(freezeOn) && child) {
          freezeOn = null;
          hold?.();
        }
      },
    });
    hold = () => p.sim.faults.set({ latencyMs: 600_000 });
    const state = p.env.XSMETA_STATE_DIR!;
    await withEnv(p.env, async () => {
      expect(await xsmeta(['backup', '--create'], capture())).toBe(0);

      // A backup, killed while it captures: BackupStarted was in the log before it read the pool.
      freezeOn = 'VM.get_all_records';
      child = spawn(process.execPath, [BIN, 'backup'], {
        env: { ...process.env, ...p.env },
        stdio: 'ignore',
      });
      const backupDone = exited(child);
      const seen = await untilLogged(state, (ev) =>
        ev.some((e) => e.type === 'BackupStarted' && e.metadata.pid === child!.pid),
      );
      child.kill('SIGKILL');
      expect(await backupDone).toBe('SIGKILL');
      p.sim.faults.clear();
      expect(seen.at(-1)).toMatchObject({ type: 'BackupStarted' });

      // A restore, killed after every VM's outcome, before the SR names: each outcome was
      // appended as it finished. The SRs are renamed first, so that the restore sets their
      // names (a name already right is not set again).
      const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
      for (const ref of (await x.getAllRecords('SR')).keys())
        await x.call('SR.set_name_label', ref, 'renamed since the backup');
      await x.logout();
      freezeOn = 'SR.set_name_label';
      child = spawn(process.execPath, [BIN, 'restore', '--yes', '--force'], {
        env: { ...process.env, ...p.env },
        stdio: 'ignore',
      });
      const restoreDone = exited(child);
      const outcomes = (ev: RecordedEvent[]) =>
        ev.filter(
          (e) =>
            (e.type === 'VmRestored' || e.type === 'VmRestoreFailed') &&
            e.metadata.pid === child!.pid,
        ).length;
      const before = await untilLogged(state, (ev) =>
        ev.some((e) => e.type === 'RestoreRequested' && e.metadata.pid === child!.pid),
      );
      const written = before.find((e) => e.type === 'BackupWritten')!.data as {
        vmCount: number;
        templateCount: number;
      };
      const n = written.vmCount + written.templateCount;
      const all = await untilLogged(state, (ev) => outcomes(ev) === n);
      child.kill('SIGKILL');
      expect(await restoreDone).toBe('SIGKILL');
      p.sim.faults.clear();
      expect(all.some((e) => e.type === 'RestoreFinished' && e.metadata.pid === child!.pid)).toBe(
        false,
      );

      const h = capture();
      expect(await xsmeta(['history', '--json'], h)).toBe(0);
      const runs = JSON.parse(h.stdout[0]!) as Run[];
      expect(runs.map((r) => [r.kind, r.outcome])).toEqual([
        ['restore', 'ABANDONED'],
        ['backup', 'ABANDONED'],
        ['backup', 'SUCCESS'],
      ]);
      expect(runs[0]).toMatchObject({ endedAt: null, lastEvent: expect.stringMatching(/^Vm/) });
      expect((runs[0]!.restored ?? 0) + (runs[0]!.errors ?? 0)).toBe(n);
      expect(runs[1]).toMatchObject({ endedAt: null, lastEvent: 'BackupStarted' });
      const text = capture();
      expect(await xsmeta(['history'], text)).toBe(0);
      expect(text.stdout[0]).toMatch(/ restore +ABANDONED .*its process \d+ on .* is gone/);
      expect(text.stdout).toHaveLength(3);
      // `list` names the abandoned backup of its SR.
      const l = capture();
      expect(await xsmeta(['list'], l)).toBe(0);
      expect(l.stdout.at(-1)).toMatch(
        new RegExp(
          `^ABANDONED backup run ${runs[1]!.runId} started .*last recorded: BackupStarted`,
        ),
      );
      // --run: that run's events, oldest first, with the time each happened.
      const one = capture();
      expect(await xsmeta(['history', '--run', runs[0]!.runId, '--json'], one)).toBe(0);
      const events = JSON.parse(one.stdout[0]!) as { type: string; at: string }[];
      expect(events[0]!.type).toBe('RestoreRequested');
      expect(events).toHaveLength(n + 1);
      expect([...events.map((e) => e.at)].sort()).toEqual(events.map((e) => e.at));
      // The kind filter, and a checkpoint beside the log.
      const k = capture();
      expect(await xsmeta(['history', '--kind', 'backup', '--json'], k)).toBe(0);
      expect((JSON.parse(k.stdout[0]!) as Run[]).map((r) => r.kind)).toEqual(['backup', 'backup']);
      expect(existsSync(join(state, 'projections', 'run-history', 'head.json'))).toBe(true);
    });
    await p.close();
  },
  120_000,
);

it('history: an empty log says so; bad --since and --kind are usage errors', async () => {
  const p = await pool({ vms: 1 });
  await withEnv(p.env, async () => {
    const h = capture();
    expect(await xsmeta(['history'], h)).toBe(0);
    expect(h.stdout).toEqual(['No runs recorded yet: the history is empty.']);
    const j = capture();
    expect(await xsmeta(['history', '--json'], j)).toBe(0);
    expect(j.stdout).toEqual(['[]']);
    const bad = capture();
    expect(await xsmeta(['history', '--since', 'yesterday-ish'], bad)).not.toBe(0);
    expect(bad.stderr.join('\n')).toMatch(/--since takes a date/);
    const kind = capture();
    expect(await xsmeta(['history', '--kind', 'bakup'], kind)).not.toBe(0);
    expect(kind.stderr.join('\n')).toMatch(
      /--kind must be one of backup, restore, convert, schedule/,
    );
  });
  await p.close();
});
