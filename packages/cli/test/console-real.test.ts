/**
 * What the console's real services promise beyond the shared behaviour suite
 * (console-services.test.ts), seen from the pool's side: one login and one plug of the backup
 * disk per restore, the seq chosen is the one restored, and Stop leaves nothing plugged and
 * the run recorded as stopped. Every stop happens at a known point (a progress or per-VM
 * report), never after a wait.
 */
import type { ConsoleServices } from '@xsmeta/tui';
import { XapiClient } from '@xsmeta/xapi';
import { afterEach, expect, it } from 'vitest';
import { connectionFlags, resolveSettings } from '../src/config.js';
import { consoleServices } from '../src/console.js';
import { allEvents, devicesLeft, pool } from './support.js';

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of open.splice(0)) await close();
});

/** The CLI's console services over a simulator whose every call is recorded. */
async function setup() {
  const calls: string[] = [];
  const p = await pool({ vms: 4, srs: 2, log: (l) => calls.push(l.trim()) });
  const saved = { ...process.env };
  Object.assign(process.env, p.env);
  open.push(async () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
    await p.close();
  });
  const services: ConsoleServices = consoleServices(resolveSettings(connectionFlags({})));
  const srs = await services.listSrs();
  const sr = (srs.find((x) => x.isDefault) ?? srs[0]!).uuid;
  const count = (prefix: string) => calls.filter((c) => c.startsWith(prefix)).length;
  /** The VBDs xsmeta plugged that are still in the pool. */
  const ourVbds = async () => {
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    try {
      return [
        ...(await x.getAllRecords<{ other_config: Record<string, string> }>('VBD')).values(),
      ].filter((v) => v.other_config['xsmeta-attach']).length;
    } finally {
      await x.logout();
    }
  };
  return { p, services, sr, count, ourVbds, state: p.env.XSMETA_STATE_DIR! };
}

const live = () => new AbortController().signal;

it('a console restore logs in once, plugs the backup disk once, and restores the seq chosen, not the newest', async () => {
  const { services, sr, count, state } = await setup();
  const older = await services.backup(sr, () => {}, live());
  const newer = await services.backup(sr, () => {}, live());
  expect(newer.seq).toBeGreaterThan(older.seq);
  const logins = count('session.login');
  const plugs = count('VBD.plug');
  const seen: number[] = [];
  await services.restore(
    { srUuid: sr, seq: older.seq, mode: 'all', dryRun: true },
    (v) => seen.push(v.done),
    live(),
  );
  expect(seen.length).toBe(older.vmCount + older.templateCount);
  expect(count('session.login') - logins).toBe(1);
  expect(count('VBD.plug') - plugs).toBe(1);
  const asked = (await allEvents(state)).filter((e) => e.type === 'RestoreRequested');
  expect(asked.at(-1)!.data.seq).toBe(older.seq);
});

it('a console restore of a seq no longer kept is refused with BACKUP_NOT_FOUND, and nothing is imported', async () => {
  const { services, sr, count } = await setup();
  const b = await services.backup(sr, () => {}, live());
  const imports = count('/import');
  const seen: unknown[] = [];
  const e = await services
    .restore({ srUuid: sr, seq: b.seq + 7, mode: 'all', dryRun: true }, (v) => seen.push(v), live())
    .then(
      () => null,
      (err: unknown) => err as Error & { code?: string },
    );
  expect(e?.code).toBe('BACKUP_NOT_FOUND');
  expect(e?.message).toContain(`seq ${b.seq + 7}`);
  expect(seen).toEqual([]);
  expect(count('/import')).toBe(imports);
});

it('Stop during a console restore: no VM is imported after it, nothing is left plugged, the run is recorded as stopped', async () => {
  const { p, services, sr, ourVbds, state } = await setup();
  const b = await services.backup(sr, () => {}, live());
  const ac = new AbortController();
  let reported = 0;
  const e = await services
    .restore(
      { srUuid: sr, seq: b.seq, mode: 'all', dryRun: true },
      () => {
        reported++;
        ac.abort();
      },
      ac.signal,
    )
    .then(
      () => null,
      (err: unknown) => err as Error,
    );
  expect(e).toBeInstanceOf(Error);
  expect(reported).toBe(1);
  expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
  expect(await ourVbds()).toBe(0);
  const events = await allEvents(state);
  const interrupted = events.filter((x) => x.type === 'RestoreInterrupted');
  expect(interrupted).toHaveLength(1);
  // The one VM reported is the only one the history holds: none was imported after the stop.
  expect(events.filter((x) => x.type.startsWith('VmRestore'))).toHaveLength(1);
});

it('Stop during a console backup, at capture or at the write, writes nothing and leaves nothing plugged', async () => {
  const { p, services, sr, ourVbds, state } = await setup();
  await services.backup(sr, () => {}, live());
  const before = (await services.listBackups(sr)).backups.map((x) => x.seq);
  for (const phase of ['Exporting VM metadata', 'Writing the backup']) {
    const ac = new AbortController();
    const phases: string[] = [];
    const e = await services
      .backup(
        sr,
        (t) => {
          phases.push(t.phase);
          if (t.phase === phase) ac.abort();
        },
        ac.signal,
      )
      .then(
        () => null,
        (err: unknown) => err as Error,
      );
    expect(e, phase).toBeInstanceOf(Error);
    expect(phases.at(-1)).toBe(phase);
    expect(devicesLeft(p.env.XSMETA_DEV_DIR!)).toEqual([]);
    expect(await ourVbds()).toBe(0);
  }
  expect((await services.listBackups(sr)).backups.map((x) => x.seq)).toEqual(before);
  expect((await allEvents(state)).filter((x) => x.type === 'BackupFailed')).toHaveLength(2);
});
