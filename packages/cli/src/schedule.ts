import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import {
  dueSlot,
  type EventStore,
  handleCommand,
  type ScheduleCommand,
  scheduleDecider,
  scheduleProjection,
  scheduleSummary,
  type UtcOffset,
} from '@xsmeta/core';
import { openEvents, ownerMetadata } from './adapters/event-log.js';
import { backup, parse, withPool } from './commands.js';
import { connectionFlags, resolveSettings, type Settings } from './config.js';
import type { Io } from './output.js';

/** The local time zone's offset in minutes at an instant (from the runtime's Intl data). */
export const localOffset: UtcOffset = (at) => -at.getTimezoneOffset();

/** A schedule command through the event-sourced command handler, with this process's owner. */
function scheduleCommand(store: EventStore, cmd: ScheduleCommand) {
  return handleCommand(store, 'schedule', scheduleDecider, cmd, { metadata: ownerMetadata() });
}

const cronDir = () => process.env.XSMETA_CRON_DIR ?? '/etc/cron.d';

/** The cron entry: hourly, `xsmeta schedule run` decides whether a slot is due. */
function installCron(frequency: string, io: Io): void {
  const path = join(cronDir(), 'xsmeta');
  if (frequency === 'never') {
    rmSync(path, { force: true });
    return;
  }
  if (!existsSync(cronDir())) {
    io.err(
      `note: ${cronDir()} does not exist; run 'xsmeta schedule run' hourly from your scheduler`,
    );
    return;
  }
  const bin = process.argv[1] ?? 'xsmeta';
  const envs = [
    'XSMETA_URL',
    'XSMETA_USERNAME',
    'XSMETA_PASSWORD_FILE',
    'XSMETA_INVENTORY',
    'XSMETA_DEV_DIR',
    'XSMETA_STATE_DIR',
  ]
    .filter((k) => process.env[k])
    .map((k) => `${k}=${process.env[k]}`);
  writeFileSync(
    path,
    `# Installed by 'xsmeta schedule ${frequency}'; 'xsmeta schedule never' removes it.\n${envs.join('\n')}${envs.length ? '\n' : ''}17 * * * * root ${process.execPath} ${bin} schedule run\n`,
  );
}

function syslog(line: string): void {
  spawnSync('logger', ['-t', 'xsmeta', line], { stdio: 'ignore' });
}

/** The schedule's view, folded from the `schedule` stream alone (not the whole log). */
async function scheduleView(store: EventStore) {
  let view = structuredClone(scheduleProjection.initial);
  for await (const e of store.readStream('schedule')) view = scheduleProjection.apply(view, e);
  return view;
}

async function summary(s: Settings, store: EventStore) {
  const view = await scheduleView(store);
  let defaultSr: string | null = null;
  if (s.url && view.frequency !== 'never')
    defaultSr = await withPool(s, async (p) => (await p.pool()).defaultSrUuid).catch(() => null);
  return scheduleSummary(view, new Date(), defaultSr, localOffset);
}

/** Sets the frequency (an event) and installs or removes the cron entry. */
export async function setFrequency(s: Settings, frequency: string, io: Io): Promise<void> {
  const store = openEvents(s.stateDir);
  try {
    await scheduleCommand(store, {
      type: 'SetSchedule',
      to: frequency,
      by: userInfo().username,
      at: new Date().toISOString(),
    });
  } finally {
    await store.close();
  }
  installCron(frequency.toLowerCase(), io);
}

/** `{frequency, srUuid, nextRunAt, lastRun}` as `xsmeta schedule --json` prints it. */
export async function scheduleStatus(s: Settings) {
  const store = openEvents(s.stateDir);
  try {
    return await summary(s, store);
  } finally {
    await store.close();
  }
}

export async function cmdSchedule(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' } });
  const s = resolveSettings(connectionFlags(values));
  const [what] = positionals;
  if (what === 'run') return runDue(s, io);
  const store = openEvents(s.stateDir);
  try {
    if (what !== undefined) {
      await scheduleCommand(store, {
        type: 'SetSchedule',
        to: what,
        by: userInfo().username,
        at: new Date().toISOString(),
      });
      installCron(what.toLowerCase(), io);
    }
    const sum = await summary(s, store);
    if (values.json) io.out(JSON.stringify(sum));
    else
      io.out(
        `Backups: ${sum.frequency}${sum.nextRunAt ? `, next at ${sum.nextRunAt}` : ''}${sum.srUuid ? ` to the default SR ${sum.srUuid}` : ''}${sum.lastRun ? `; last run ${sum.lastRun.at}: ${sum.lastRun.outcome}${sum.lastRun.error ? ` (${sum.lastRun.error})` : ''}` : ''}`,
      );
  } finally {
    await store.close();
  }
  return 0;
}

/**
 * What cron runs: if a slot is due (one catch-up at most), back up to the pool's default SR
 * (creating the backup VDI when missing); a failure exits non-zero, is logged to syslog and
 * recorded, and shows in `xsmeta schedule --json` as lastRun.
 */
export async function runDue(
  s: Settings,
  io: Io,
  now: () => Date = () => new Date(),
): Promise<number> {
  let slot: string | null;
  const runId = `sched-${Date.now().toString(36)}`;
  {
    const store = openEvents(s.stateDir);
    try {
      const view = await scheduleView(store);
      slot = dueSlot(view.frequency, view.lastSlot, now(), localOffset, view.since);
      if (!slot) {
        io.err('xsmeta: no scheduled backup is due');
        return 0;
      }
      await scheduleCommand(store, { type: 'StartScheduledRun', slot, runId });
    } catch (e) {
      if (
        (e as { code?: string }).code === 'RUN_ALREADY_STARTED' ||
        (e as { code?: string }).code === 'WRONG_EXPECTED_VERSION'
      ) {
        io.err('xsmeta: this slot is already being backed up');
        return 0;
      }
      throw e;
    } finally {
      await store.close();
    }
  }
  let outcome: { ok: true; srUuid: string } | { ok: false; srUuid: string | null; error: string };
  try {
    const r = await backup(
      s,
      { create: true, reinit: false, findOnly: false, wait: true, trigger: 'schedule' },
      io,
    );
    outcome = { ok: true, srUuid: r.srUuid };
  } catch (e) {
    outcome = {
      ok: false,
      srUuid: null,
      error: `${(e as { code?: string }).code ?? 'ERROR'}: ${(e as Error).message}`,
    };
  }
  const store = openEvents(s.stateDir);
  try {
    await scheduleCommand(store, {
      type: 'FinishScheduledRun',
      slot,
      runId,
      outcome: outcome.ok ? 'success' : 'failure',
      srUuid: outcome.srUuid,
      ...(outcome.ok ? {} : { error: outcome.error }),
    });
  } finally {
    await store.close();
  }
  if (!outcome.ok) {
    syslog(`scheduled metadata backup failed: ${outcome.error}`);
    io.err(`xsmeta: scheduled backup failed: ${outcome.error}`);
    return 1;
  }
  io.err(`xsmeta: scheduled backup of slot ${slot} written to SR ${outcome.srUuid}`);
  return 0;
}
