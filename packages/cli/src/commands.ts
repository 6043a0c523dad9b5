import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  type BackupResult,
  backupVdiOf,
  fmtBytes,
  listings,
  type RestoreResult,
  type RingPort,
  runBackup,
  runRestore,
  type VmOutcome,
  withRing,
} from '@xsmeta/core';
import { openEvents, withEvents } from './adapters/event-log.js';
import {
  CONNECTION_OPTIONS,
  connectionFlags,
  resolveSettings,
  type Settings,
  UsageError,
} from './config.js';
import { abandonedBackups, type HistoryQuery, printHistory } from './history.js';
import { type Io, progressLine } from './output.js';
import { archive, connect, disk, lockSr, systemClock, XapiPool } from './runtime.js';

type Values = Record<string, string | boolean | undefined>;

export function parse(
  argv: string[],
  options: Record<string, { type: 'string' | 'boolean'; short?: string }>,
): { values: Values; positionals: string[] } {
  try {
    const r = parseArgs({
      args: argv,
      options: { ...CONNECTION_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: r.values as Values, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Connects, runs fn with the pool port, and always logs out. */
export async function withPool<T>(s: Settings, fn: (pool: XapiPool) => Promise<T>): Promise<T> {
  const xapi = await connect(s);
  try {
    return await fn(new XapiPool(xapi, s));
  } finally {
    await xapi.logout();
  }
}

/** Opens the SR's backup ring read-only for fn, and always detaches and logs out. */
export function withBackupRing<T>(
  s: Settings,
  srUuid: string | undefined,
  fn: (ring: RingPort) => Promise<T>,
): Promise<T> {
  return withPool(s, async (pool) =>
    withRing(pool, disk, await backupVdiOf(pool, srUuid), true, fn),
  );
}

export interface BackupArgs {
  srUuid?: string | undefined;
  create: boolean;
  keep?: number | undefined;
  reinit: boolean;
  findOnly: boolean;
  wait: boolean;
  trigger?: 'manual' | 'schedule';
}

/** The backup, as both front-ends run it: lock, capture, append, events persisted. */
export async function backup(s: Settings, a: BackupArgs, io: Io): Promise<BackupResult> {
  return withPool(s, async (pool) => {
    const srUuid = a.srUuid ?? (await pool.pool()).defaultSrUuid ?? undefined;
    const unlock = srUuid ? await lockSr(s.stateDir, srUuid, a.wait) : () => {};
    const controller = new AbortController();
    try {
      return await withEvents(s.stateDir, (events) =>
        runBackup(
          {
            pool,
            disk,
            archive,
            clock: systemClock,
            events,
            progress: progressLine(io),
            signal: controller.signal,
          },
          {
            ...(srUuid ? { srUuid } : {}),
            create: a.create,
            ...(a.keep ? { keep: a.keep } : {}),
            reinit: a.reinit,
            findOnly: a.findOnly,
            trigger: a.trigger ?? 'manual',
          },
        ),
      );
    } finally {
      unlock();
    }
  });
}

export function keepOf(v: string | boolean | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 100)
    throw new UsageError(`the number of backups to keep must be 1..100, not ${String(v)}`);
  return n;
}

export async function cmdBackup(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    sr: { type: 'string' },
    create: { type: 'boolean' },
    keep: { type: 'string' },
    json: { type: 'boolean' },
    wait: { type: 'boolean' },
  });
  const s = resolveSettings(connectionFlags(values));
  const r = await backup(
    s,
    {
      srUuid: values.sr as string | undefined,
      create: values.create === true,
      keep: keepOf(values.keep),
      reinit: false,
      findOnly: false,
      wait: values.wait === true,
    },
    io,
  );
  if (values.json) io.out(JSON.stringify(r));
  else
    io.err(
      `Backed up ${r.vmCount} VM(s) and ${r.templateCount} template(s) to SR ${r.srUuid} as ${r.date} (seq ${r.seq}): ${fmtBytes(r.rawBytes)} stored in ${fmtBytes(r.storedBytes)}`,
    );
  return 0;
}

export async function cmdList(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, { sr: { type: 'string' }, json: { type: 'boolean' } });
  const s = resolveSettings(connectionFlags(values));
  const rows = await withBackupRing(s, values.sr as string | undefined, async (ring) =>
    listings(ring),
  );
  if (values.json) {
    io.out(JSON.stringify(rows.map(({ converted: _, ...r }) => r)));
  } else {
    for (const r of rows)
      io.out(
        `${r.date}  seq ${r.seq}  ${r.vmCount} VM(s), ${r.templateCount} template(s)  ${fmtBytes(r.storedBytes)}  format ${r.formatVersion}${r.converted ? ' (converted from a legacy backup)' : ''}`,
      );
    const sr = (values.sr as string | undefined) ?? rows[0]?.srUuid ?? null;
    for (const l of await abandonedBackups(openEvents(s.stateDir), s.stateDir, sr)) io.out(l);
  }
  return 0;
}

export async function cmdVerify(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, { sr: { type: 'string' }, json: { type: 'boolean' } });
  const s = resolveSettings(connectionFlags(values));
  const report = await withBackupRing(s, values.sr as string | undefined, (ring) => ring.verify());
  const records = report.records.map((r) => ({
    seq: r.seq,
    ok: r.ok,
    ...(r.ok ? {} : { error: r.error ?? r.code ?? 'damaged' }),
  }));
  if (values.json) io.out(JSON.stringify({ ok: report.ok, records }));
  else for (const r of records) io.out(`seq ${r.seq}: ${r.ok ? 'ok' : `DAMAGED: ${r.error}`}`);
  return report.ok ? 0 : 1;
}

export async function confirm(io: Io, question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return true;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const a = await new Promise<string>((r) =>
    rl.question(`${question} Type 'yes' to continue: `, r),
  );
  rl.close();
  void io;
  return a.trim() === 'yes';
}

export interface RestoreArgs {
  srUuid?: string | undefined;
  date?: string | undefined;
  mode: 'sr' | 'all';
  dryRun: boolean;
  force: boolean;
}

/** One line per VM of a restore, as both restore commands print it. */
function vmLine(v: VmOutcome, dryRun: boolean): string {
  return v.ok
    ? `${dryRun ? 'Would restore' : 'Restored'} ${v.isTemplate ? 'template' : 'VM'} ${v.name} (${v.uuid})`
    : `Error restoring ${v.name} (${v.uuid}): ${v.code} ${(v.params ?? []).join(' ')}`.trim();
}

export function restore(
  s: Settings,
  a: RestoreArgs,
  io: Io,
  onVm?: (line: string) => void,
): Promise<RestoreResult> {
  return withPool(s, (pool) => restoreOn(pool, s, a, io, onVm));
}

/** The restore on a connected pool, its events persisted; `source` is a legacy backup. */
export function restoreOn(
  pool: XapiPool,
  s: Settings,
  a: RestoreArgs,
  io: Io,
  onVm?: (line: string) => void,
  source?: Parameters<typeof runRestore>[2],
): Promise<RestoreResult> {
  return withEvents(s.stateDir, (events) =>
    runRestore(
      {
        pool,
        disk,
        archive,
        clock: systemClock,
        events,
        progress: progressLine(io),
        onVm: (v) => onVm?.(vmLine(v, a.dryRun)),
      },
      {
        ...(a.srUuid ? { srUuid: a.srUuid } : {}),
        ...(a.date ? { date: a.date } : {}),
        mode: a.mode,
        dryRun: a.dryRun,
        force: a.force,
      },
      source,
    ),
  );
}

export function summaryLine(r: RestoreResult): string {
  return `Restored ${r.restored} VM(s), and ${r.errors} error(s)`;
}

export async function cmdRestore(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    sr: { type: 'string' },
    date: { type: 'string' },
    mode: { type: 'string' },
    'dry-run': { type: 'boolean' },
    force: { type: 'boolean' },
    yes: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const mode = (values.mode as string | undefined) ?? 'all';
  if (mode !== 'sr' && mode !== 'all')
    throw new UsageError(`--mode must be sr or all, not ${mode}`);
  const s = resolveSettings(connectionFlags(values));
  const dryRun = values['dry-run'] === true;
  if (!dryRun && !values.yes && !(await confirm(io, 'This imports VM metadata into the pool.'))) {
    io.err('Aborted: nothing was restored.');
    return 1;
  }
  const r = await restore(
    s,
    {
      srUuid: values.sr as string | undefined,
      date: values.date as string | undefined,
      mode,
      dryRun,
      force: values.force === true,
    },
    io,
    values.json ? undefined : io.out,
  );
  if (values.json) io.out(JSON.stringify(r));
  else io.out(summaryLine(r));
  return Math.min(r.errors, 125);
}

export async function cmdHistory(argv: string[], io: Io): Promise<number> {
  const { values } = parse(argv, {
    json: { type: 'boolean' },
    run: { type: 'string' },
    since: { type: 'string' },
    kind: { type: 'string' },
  });
  const s = resolveSettings(connectionFlags(values));
  const q = { json: values.json === true, run: values.run, since: values.since, kind: values.kind };
  return printHistory(openEvents(s.stateDir), s.stateDir, q as HistoryQuery, io.out);
}
