// LevelEventStore against raw classic-level writes of the same msgpack-packed events, in the
// same run (issue 4): append throughput with batches of 1 and of 100, and the time to rebuild
// the history projection from 100,000 stored events.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { historyProjection, LevelEventStore, rebuild } from '../packages/core/dist/index.js';
import { row, runIfMain, timeMs } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const requireCore = createRequire(join(here, '..', 'packages/core/package.json'));
const { ClassicLevel } = requireCore('classic-level');
const { Packr } = requireCore('msgpackr');

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

await runIfMain(import.meta.url, run);
