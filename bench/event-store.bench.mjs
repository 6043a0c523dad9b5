// LevelEventStore against raw classic-level writes of the same msgpack-packed events, in the
// same run (issue 4): append throughput with batches of 1 and of 100, and the time to rebuild
// the history projection from 100,000 stored events. Issue 18: the cost per event of appending
// at decision time through the shared store (open, append, close), and a command's start-up
// with 100,000 events in the log against an empty log.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyProjection, rebuild } from '../packages/core/dist/index.js';
import { LevelEventStore, SharedLevelEventStore } from '../packages/eventstore-level/dist/index.js';
import { row, runIfMain, timeMs } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const requireStore = createRequire(join(here, '..', 'packages/eventstore-level/package.json'));
const { ClassicLevel } = requireStore('classic-level');
const { Packr } = requireStore('msgpackr');
const XSMETA = join(here, '..', 'packages/cli/bin/xsmeta.js');
const SHARED = 300;
const STARTS = 15;

const SINGLE = 20_000;
const BATCH = 100;
const REBUILD = 100_000;

/** A realistic event: what a finished backup records. */
function event(i) {
  return {
    type: 'BackupWritten',
    data: {
      runId: `run-${Math.floor(i / 10)}`,
      srUuid: 'a08ff49b-6f77-4632-a16c-43069c43a8c3',
      vdiUuid: '5b864cbf-680a-59d0-9028-a9e8452bf2a8',
      seq: i,
      date: '2026-11-25-03-49-24',
      vmCount: 1000,
      templateCount: 5,
      rawBytes: 140_019_825,
      storedBytes: 1_473_447,
      formatVersion: 1,
      evicted: [],
    },
  };
}

const open = (dir) => new ClassicLevel(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
const pad = (n) => String(n).padStart(16, '0');

/** Appends `total` events in appends of `size` to streams of 10 appends each. */
async function oursAppend(dir, total, size) {
  const store = await LevelEventStore.open(open(dir), { location: dir });
  try {
    return await timeMs(async () => {
      for (let i = 0, k = 0; i < total; i += size, k++) {
        const events = Array.from({ length: size }, (_, j) => event(i + j));
        await store.appendToStream(`backup-${Math.floor(k / 10)}`, events);
      }
    });
  } finally {
    await store.close();
  }
}

/** Raw: the same events packed with msgpackr (same options), one put or one batch per append. */
async function rawAppend(dir, total, size) {
  const db = open(dir);
  await db.open();
  const packr = new Packr({ useRecords: false, moreTypes: false });
  const at = new Date().toISOString();
  try {
    return await timeMs(async () => {
      for (let i = 0, k = 0; i < total; i += size, k++) {
        const stream = `backup-${Math.floor(k / 10)}`;
        const pack = (j) =>
          packr.pack({ s: stream, v: j, t: 'BackupWritten', a: at, d: event(i + j).data, x: 1 });
        if (size === 1) await db.put(`e!${pad(i + 1)}`, pack(0));
        else
          await db.batch(
            Array.from({ length: size }, (_, j) => ({
              type: 'put',
              key: `e!${pad(i + j + 1)}`,
              value: pack(j),
            })),
          );
      }
    });
  } finally {
    await db.close();
  }
}

export async function run() {
  const scratch = mkdtempSync(join(tmpdir(), 'bench-events-'));
  const bench = 'event store (issue 4)';
  try {
    const rows = [];
    for (const [size, total] of [
      [1, SINGLE],
      [BATCH, REBUILD],
    ]) {
      const rawMs = await rawAppend(join(scratch, `raw-${size}`), total, size);
      const oursMs = await oursAppend(join(scratch, `ours-${size}`), total, size);
      const ours = total / (oursMs / 1000);
      const raw = total / (rawMs / 1000);
      rows.push(
        row({
          bench,
          metric: `append, batches of ${size} (${total} events)`,
          ours,
          baseline: raw,
          unit: 'events/s',
          goal: '>= 0.5 of raw classic-level',
          pass: ours / raw >= 0.5,
        }),
      );
    }
    // Rebuild from the 100,000 events just appended, on a freshly opened store.
    const dir = join(scratch, `ours-${BATCH}`);
    const store = await LevelEventStore.open(open(dir), { location: dir });
    let count = 0;
    let ms;
    try {
      ms = await timeMs(async () => {
        count = (await rebuild(store, historyProjection)).length;
      });
    } finally {
      await store.close();
    }
    if (count !== REBUILD) throw new Error(`rebuild saw ${count} events, not ${REBUILD}`);
    rows.push(...(await decisionTime(scratch)), ...(await startUp(scratch)));
    rows.push(
      row({
        bench,
        metric: `rebuild of the history projection, ${count} events`,
        ours: ms / 1000,
        unit: 's',
        goal: '< 2 s',
        better: 'lower',
        pass: ms < 2000,
      }),
    );
    return rows;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Append at decision time: one event per append, each through the shared store (the LevelDB
 * opened, appended to and closed), as a run records its steps; against the same appends to a
 * store held open (what one process alone could do).
 */
async function decisionTime(scratch) {
  const bench = 'event store (issue 18)';
  const shared = new SharedLevelEventStore(join(scratch, 'shared'));
  const sharedMs = await timeMs(async () => {
    for (let i = 0; i < SHARED; i++)
      await shared.appendToStream(`backup-${Math.floor(i / 4)}`, [event(i)], {
        expectedVersion: i % 4 === 0 ? 'no_stream' : (i % 4) - 1,
      });
  });
  const dir = join(scratch, 'held');
  const held = await LevelEventStore.open(open(dir), { location: dir });
  const heldMs = await timeMs(async () => {
    for (let i = 0; i < SHARED; i++)
      await held.appendToStream(`backup-${Math.floor(i / 4)}`, [event(i)]);
  });
  await held.close();
  return [
    row({
      bench,
      metric: `append at decision time, shared store (open, append, close), per event (${SHARED} events)`,
      ours: sharedMs / SHARED,
      baseline: heldMs / SHARED,
      unit: 'ms',
      better: 'lower',
      goal: 'informative: the price of sharing the log between processes',
    }),
  ];
}

/** Wall time of `xsmeta <args>` as a new process. */
function once(args, stateDir) {
  const t0 = process.hrtime.bigint();
  execFileSync(process.execPath, [XSMETA, ...args], {
    env: { ...process.env, XSMETA_STATE_DIR: stateDir, XSMETA_URL: '' },
    stdio: 'ignore',
  });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Medians of STARTS runs on each state folder, taken in turns (the machine's load is shared). */
function medians(args, a, b) {
  const ta = [];
  const tb = [];
  for (let i = 0; i < STARTS; i++) {
    ta.push(once(args, a));
    tb.push(once(args, b));
  }
  const mid = (t) => t.sort((x, y) => x - y)[Math.floor(STARTS / 2)];
  return [mid(ta), mid(tb)];
}

/**
 * A command's start-up with 100,000 events in the log (backups of 3 events and restores of 22,
 * about 13,000 runs) against an empty log: `schedule --json` (the schedule's stream only) and
 * `history --since` a future date and `history` (its newest page): the run index's head, the
 * events after it, and as much of the index file, read from its end, as is printed (the first
 * run, not timed, writes the index).
 */
async function startUp(scratch) {
  const bench = 'event store (issue 18)';
  const empty = join(scratch, 'state-empty');
  const full = join(scratch, 'state-full');
  const store = await LevelEventStore.open(open(join(full, 'events')));
  let n = 0;
  for (let run = 0; n < REBUILD; run++) {
    const runId = `r${run}`;
    if (run % 4 === 3) {
      const vms = Array.from({ length: 20 }, (_, i) => ({
        type: 'VmRestored',
        data: { runId, vmUuid: `vm-${i}`, name: `vm ${i}`, isTemplate: false, dryRun: false },
      }));
      const evs = [
        { type: 'RestoreRequested', data: { runId, srUuid: 'sr', seq: 1, dryRun: false } },
        ...vms,
        { type: 'RestoreFinished', data: { runId, restored: 20, errors: 0, dryRun: false } },
      ];
      await store.appendToStream(`restore-${runId}`, evs.slice(0, REBUILD - n));
      n += Math.min(evs.length, REBUILD - n);
    } else {
      const evs = [
        { type: 'BackupStarted', data: { runId, srUuid: 'sr', trigger: 'manual' } },
        { type: 'BackupPartsCaptured', data: { runId, vmCount: 1000, templateCount: 5 } },
        event(run),
      ];
      await store.appendToStream(`backup-${runId}`, evs.slice(0, REBUILD - n));
      n += Math.min(evs.length, REBUILD - n);
    }
  }
  await store.close();
  const rows = [];
  for (const [what, args] of [
    ['schedule --json', ['schedule', '--json']],
    ['history --since 2999-01-01', ['history', '--since', '2999-01-01']],
    ['history (the newest 50 runs)', ['history']],
  ]) {
    // Warm-up (not timed): the first open of the full log folds LevelDB's journal into a table,
    // and the first history writes the run index.
    once(args, empty);
    once(['history', '--since', '2999-01-01'], full);
    const [emptyMs, fullMs] = medians(args, empty, full);
    rows.push(
      row({
        bench,
        metric: `start-up of xsmeta ${what}, ${REBUILD} events vs an empty log, median of ${STARTS}`,
        ours: fullMs,
        baseline: emptyMs,
        unit: 'ms',
        better: 'lower',
        goal: 'within 10% of an empty log',
        pass: fullMs <= emptyMs * 1.1,
      }),
    );
  }
  return rows;
}

await runIfMain(import.meta.url, run);
