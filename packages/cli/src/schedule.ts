import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import {
  type BackupResult,
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
import type { Settings } from './config.js';
import { type Io, withCode } from './output.js';
import { withPool } from './root.js';
import { backup, partialBackup } from './services.js';

/** The local time zone's offset in minutes at an instant (from the runtime's Intl data). */
export const localOffset: UtcOffset = (at) => -at.getTimezoneOffset();

/** A schedule command through the event-sourced command handler, with this process's owner. */
function scheduleCommand(store: EventStore, cmd: ScheduleCommand) {
  return handleCommand(store, 'schedule', scheduleDecider, cmd, { metadata: ownerMetadata() });
}

/** The folder cron reads; tests and the demo point XSMETA_CRON_DIR at a folder of their own. */
const cronDir = () => process.env.XSMETA_CRON_DIR || '/etc/cron.d';

/** The stored password a scheduled job reads, root-only, in the state folder. */
export const cronPasswordFile = (s: Settings) => join(s.stateDir, 'schedule-password');

/**
 * The environment a scheduled run needs to reach this pool. A password given in
 * XSMETA_PASSWORD is never written into the cron entry (world-readable): it is stored in a file
 * only root can read, and the entry names that file.
 */
function cronEnv(s: Settings): string[] {
  const env: Record<string, string | undefined> = {
    XSMETA_URL: s.url ?? undefined,
    XSMETA_USERNAME: s.url ? s.username : undefined,
    XSMETA_INVENTORY: s.inventory,
    XSMETA_DEV_DIR: s.devDir,
    XSMETA_STATE_DIR: s.stateDir,
    XSMETA_TLS_FINGERPRINT: process.env.XSMETA_TLS_FINGERPRINT,
    XSMETA_TLS_INSECURE: process.env.XSMETA_TLS_INSECURE,
    XSMETA_TIMEOUT_MS: process.env.XSMETA_TIMEOUT_MS,
    XSMETA_SOCKET: process.env.XSMETA_SOCKET,
    XSMETA_SIGNING_KEY: process.env.XSMETA_SIGNING_KEY,
  };
  const stored = cronPasswordFile(s);
  if (s.passwordFile) env.XSMETA_PASSWORD_FILE = s.passwordFile;
  else if (s.url && s.password !== null) {
    writeFileSync(stored, s.password, { mode: 0o600 });
    chmodSync(stored, 0o600);
    env.XSMETA_PASSWORD_FILE = stored;
  }
  if (env.XSMETA_PASSWORD_FILE !== stored) rmSync(stored, { force: true });
  return Object.entries(env)
    .filter(([, v]) => v)
    .map(([k, v]) => `${k}=${v}`);
}

/** The cron entry: hourly, `xsmeta schedule run` decides whether a slot is due. */
function installCron(s: Settings, frequency: string, io: Io): void {
  const path = join(cronDir(), 'xsmeta');
  if (frequency === 'never') {
    rmSync(path, { force: true });
    rmSync(cronPasswordFile(s), { force: true });
    return;
  }
  if (!existsSync(cronDir())) {
    io.err(
      `note: ${cronDir()} does not exist; run 'xsmeta schedule run' hourly from your scheduler`,
    );
    return;
  }
  const bin = process.argv[1] ?? 'xsmeta';
  const envs = cronEnv(s);
  writeFileSync(
    path,
    `# Installed by 'xsmeta schedule ${frequency}'; 'xsmeta schedule never' removes it.\n${envs.join('\n')}${envs.length ? '\n' : ''}17 * * * * root ${process.execPath} ${bin} schedule run\n`,
  );
  io.err(`Installed the cron entry ${path} (hourly; a run backs up when a slot is due)`);
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
  installCron(s, frequency.toLowerCase(), io);
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

/** `xsmeta schedule [FREQUENCY|run] [--json]` on parsed arguments. */
export async function cmdSchedule(
  what: string | undefined,
  json: boolean,
  s: Settings,
  io: Io,
): Promise<number> {
  if (what === 'run') return runDue(s, io, () => new Date(), json);
  if (what !== undefined) await setFrequency(s, what, io);
  const store = openEvents(s.stateDir);
  try {
    const sum = await summary(s, store);
    if (json) io.out(JSON.stringify(sum));
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
  json = false,
): Promise<number> {
  const report = (r: Record<string, unknown>) => {
    if (json) io.out(JSON.stringify(r));
  };
  let slot: string | null = null;
  const runId = `sched-${Date.now().toString(36)}`;
  {
    const store = openEvents(s.stateDir);
    try {
      const view = await scheduleView(store);
      slot = dueSlot(view.frequency, view.lastSlot, now(), localOffset, view.since);
      if (!slot) {
        io.err('xsmeta: no scheduled backup is due');
        report({ due: false, slot: null, outcome: null });
        return 0;
      }
      await scheduleCommand(store, { type: 'StartScheduledRun', slot, runId });
    } catch (e) {
      if (
        (e as { code?: string }).code === 'RUN_ALREADY_STARTED' ||
        (e as { code?: string }).code === 'WRONG_EXPECTED_VERSION'
      ) {
        io.err('xsmeta: this slot is already being backed up');
        report({ due: true, slot, outcome: 'running' });
        return 0;
      }
      throw e;
    } finally {
      await store.close();
    }
  }
  let outcome:
    | { ok: true; srUuid: string; result: BackupResult }
    | { ok: false; srUuid: string | null; error: string };
  try {
    const r = await backup(
      s,
      {
        create: true,
        reinit: false,
        findOnly: false,
        wait: true,
        trigger: 'schedule',
        ownProcess: true,
      },
      io,
    );
    outcome = { ok: true, srUuid: r.srUuid, result: r };
  } catch (e) {
    outcome = {
      ok: false,
      srUuid: null,
      error: withCode((e as { code?: string }).code ?? 'ERROR', (e as Error).message),
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
    report({ due: true, slot, outcome: 'failure', srUuid: outcome.srUuid, error: outcome.error });
    return 1;
  }
  io.err(`xsmeta: scheduled backup of slot ${slot} written to SR ${outcome.srUuid}`);
  const left = outcome.result.skipped;
  // A partial backup stays visible: syslog, the VMs named, a non-zero exit (4).
  if (left.length > 0)
    syslog(
      `scheduled metadata backup is partial: ${left.length} VM(s) left out (${left.map((v) => v.name).join(', ')})`,
    );
  report({
    due: true,
    slot,
    outcome: left.length > 0 ? 'partial' : 'success',
    srUuid: outcome.srUuid,
    ...(left.length > 0 ? { skippedVms: left.length } : {}),
  });
  return partialBackup(outcome.result, io);
}
