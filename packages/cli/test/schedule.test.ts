import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { resolveSettings } from '../src/config.js';
import { runDue, scheduleStatus } from '../src/schedule.js';
import { capture, pool, withEnv } from './support.js';

it('the scheduler backs up to the default SR when its slot comes, once; a failure shows in lastRun', async () => {
  const p = await pool({ vms: 5 });
  const cron = await mkdtemp(join(tmpdir(), 'xsmeta-cron-'));
  await withEnv({ ...p.env, XSMETA_CRON_DIR: cron }, async () => {
    const bad = capture();
    expect(await xsmeta(['schedule', 'hourly'], bad)).toBe(2);
    expect(bad.stderr[0]).toContain('use one of daily, weekly, monthly, never');
    const set = capture();
    expect(await xsmeta(['schedule', 'daily', '--json'], set)).toBe(0);
    const status = JSON.parse(set.stdout[0]!) as {
      frequency: string;
      srUuid: string;
      nextRunAt: string;
      lastRun: null;
    };
    expect(status.frequency).toBe('daily');
    expect(status.lastRun).toBeNull();
    expect(await readFile(join(cron, 'xsmeta'), 'utf8')).toMatch(
      /^17 \* \* \* \* root .* schedule run$/m,
    );
    const s = resolveSettings({});
    const slot = new Date(status.nextRunAt);
    // Before the slot: nothing is due.
    expect(await runDue(s, capture(), () => new Date(slot.getTime() - 60_000))).toBe(0);
    let list = capture();
    expect(await xsmeta(['list', '--json'], list)).toBe(3);
    // The clock passes the slot: one backup, on the default SR, creating the backup VDI.
    expect(await runDue(s, capture(), () => new Date(slot.getTime() + 60_000))).toBe(0);
    list = capture();
    expect(await xsmeta(['list', '--json'], list)).toBe(0);
    expect((JSON.parse(list.stdout[0]!) as { srUuid: string }[]).map((r) => r.srUuid)).toEqual([
      status.srUuid,
    ]);
    // Overlapping triggers for the same slot give one backup.
    expect(await runDue(s, capture(), () => new Date(slot.getTime() + 120_000))).toBe(0);
    list = capture();
    await xsmeta(['list', '--json'], list);
    expect(JSON.parse(list.stdout[0]!)).toHaveLength(1);
    // Three days off, then back: one catch-up run, not three.
    p.sim.faults.set({
      fail: [{ match: 'VBD.plug', code: 'SR_BACKEND_FAILURE', params: ['injected'] }],
    });
    const failed = capture();
    expect(await runDue(s, failed, () => new Date(slot.getTime() + 3 * 86_400_000 + 60_000))).toBe(
      1,
    );
    expect(failed.stderr.join('\n')).toMatch(/scheduled backup failed: SR_BACKEND_FAILURE/);
    let shown = capture();
    await xsmeta(['schedule', '--json'], shown);
    const failedRun = JSON.parse(shown.stdout[0]!) as {
      lastRun: { outcome: string; error?: string };
    };
    expect(failedRun.lastRun.outcome).toBe('failure');
    expect(failedRun.lastRun.error).toMatch(/SR_BACKEND_FAILURE/);
    // The failed slot is owed: the next trigger (an hour later) retries it and backs up.
    p.sim.faults.clear();
    const retry = capture();
    expect(
      await runDue(s, retry, () => new Date(slot.getTime() + 3 * 86_400_000 + 3_660_000)),
    ).toBe(0);
    expect(retry.stderr.join('\n')).toMatch(/scheduled backup of slot .* written to SR/);
    list = capture();
    await xsmeta(['list', '--json'], list);
    expect(JSON.parse(list.stdout[0]!)).toHaveLength(2);
    shown = capture();
    await xsmeta(['schedule', '--json'], shown);
    expect((JSON.parse(shown.stdout[0]!) as { lastRun: { outcome: string } }).lastRun.outcome).toBe(
      'success',
    );
    // Once done, the slot is not run again.
    expect(
      await runDue(s, capture(), () => new Date(slot.getTime() + 3 * 86_400_000 + 7_260_000)),
    ).toBe(0);
    list = capture();
    await xsmeta(['list', '--json'], list);
    expect(JSON.parse(list.stdout[0]!)).toHaveLength(2);
    expect(await xsmeta(['schedule', 'never'], capture())).toBe(0);
    expect(existsSync(join(cron, 'xsmeta'))).toBe(false);
  });
  await rm(cron, { recursive: true, force: true });
  await p.close();
}, 300_000);

it('a schedule set with XSMETA_PASSWORD stores it root-only for the job; the cron entry never holds it and the job logs in with it', async () => {
  const p = await pool({ vms: 3 });
  const cron = p.env.XSMETA_CRON_DIR!;
  await withEnv(p.env, async () => {
    expect(p.env.XSMETA_PASSWORD).toBeTruthy();
    expect(await xsmeta(['schedule', 'daily'], capture())).toBe(0);
    const entry = await readFile(join(cron, 'xsmeta'), 'utf8');
    expect(entry).not.toMatch(/^XSMETA_PASSWORD=/m);
    const env = Object.fromEntries(
      entry
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env.XSMETA_URL).toBe(p.env.XSMETA_URL);
    const file = env.XSMETA_PASSWORD_FILE!;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe(p.env.XSMETA_PASSWORD);
    // What cron runs has only the entry's environment: it logs in and backs up.
    const status = await scheduleStatus(resolveSettings({}));
    const due = () => new Date(new Date(status.nextRunAt!).getTime() + 60_000);
    const done = await runDue(resolveSettings({}, { ...env }), capture(), due);
    expect(done).toBe(0);
    // `never` removes the entry and the stored password.
    expect(await xsmeta(['schedule', 'never'], capture())).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(existsSync(join(cron, 'xsmeta'))).toBe(false);
  });
  await p.close();
}, 300_000);
