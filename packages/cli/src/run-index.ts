import {
  mkdir,
  open as openFile,
  readFile,
  rename,
  stat,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import {
  type EventStore,
  RUN_HISTORY_VERSION,
  type RunHistoryState,
  type RunSummary,
  runHistoryProjection,
} from '@xsmeta/core';
import { takeLock } from './process/lock.js';

/**
 * The run-history projection stored beside the log so that `xsmeta history` reads only what it
 * prints: `<state-dir>/projections/run-history/`
 *
 * - `ended.jsonl`: one line per ended run, appended in the order the runs ended (each line the
 *   run's summary and `end`, the log position of its last event). An ended run never changes.
 * - `head.json`: the log position (and event id) folded up to, how many bytes of `ended.jsonl`
 *   that covers, and the runs not ended yet (few: the ones running or abandoned).
 *
 * Reading folds the events after the head into the open runs (the ones that end move to the
 * file), then reads `ended.jsonl` backwards, only as far as the listing needs. A head that is
 * absent, of another version, or stale (the event at its position is not the one it folded:
 * the log was replaced) is rebuilt from the whole log. One process at a time writes the index
 * (a `lock` file holding its pid); a process that finds it locked folds in memory and saves
 * nothing. A crash between the file and the head is harmless: the file is cut back to the
 * head's length before anything is appended.
 */

const FORMAT = 1;
const dirOf = (stateDir: string) => join(stateDir, 'projections', 'run-history');

interface Head {
  format: number;
  version: number;
  position: number;
  lastId: string | null;
  bytes: number;
  ended: number;
  open: Record<string, RunSummary>;
}

/** An ended run as a line of the file: its summary and the position of its last event. */
type Ended = RunSummary & { end: number };

function validHead(h: unknown): h is Head {
  const k = h as Partial<Head> | null;
  return (
    !!k &&
    typeof k === 'object' &&
    k.format === FORMAT &&
    k.version === RUN_HISTORY_VERSION &&
    Number.isInteger(k.position) &&
    (k.position ?? -1) > 0 &&
    Number.isInteger(k.bytes) &&
    (k.bytes ?? -1) >= 0 &&
    Number.isInteger(k.ended) &&
    (k.lastId === null || typeof k.lastId === 'string') &&
    !!k.open &&
    typeof k.open === 'object'
  );
}

export interface RunIndex {
  /** The runs not ended (running or abandoned), in no order. */
  readonly open: readonly RunSummary[];
  /** How many runs have ended. */
  readonly endedCount: number;
  /** The ended runs, the last ended first, read from the end of the file as far as asked. */
  endedNewestFirst(): AsyncIterable<Ended>;
}

/** Folds events into the open runs; the runs that end leave `open` for `ended`, in order. */
async function fold(
  store: EventStore,
  from: number,
  open: Record<string, RunSummary>,
  ended: Ended[],
): Promise<{ position: number; lastId: string | null }> {
  const state: RunHistoryState = { runs: open };
  let position = 0;
  let lastId: string | null = null;
  for await (const e of store.readAll({ fromPosition: from })) {
    runHistoryProjection.apply(state, e);
    position = e.position;
    lastId = e.id;
    for (const [key, r] of Object.entries(state.runs))
      if (r.outcome !== 'RUNNING') {
        ended.push({ ...r, end: e.position });
        delete state.runs[key];
      }
  }
  return { position, lastId };
}

/** Lines of `file`'s first `bytes` bytes, the last first, read in blocks from the end. */
async function* linesBackward(file: string, bytes: number): AsyncIterable<string> {
  if (bytes === 0) return;
  const fh = await openFile(file, 'r');
  try {
    const BLOCK = 64 * 1024;
    let end = bytes;
    let rest = Buffer.alloc(0);
    while (end > 0) {
      const start = Math.max(0, end - BLOCK);
      const buf = Buffer.alloc(end - start);
      await fh.read(buf, 0, buf.length, start);
      let chunk = Buffer.concat([buf, rest]);
      let nl = chunk.lastIndexOf(10, chunk.length - 1);
      // The text after the last newline seen is a whole line once its start is found.
      let stop = chunk.length;
      while (nl >= 0) {
        const line = chunk.subarray(nl + 1, stop).toString('utf8');
        if (line.length > 0) yield line;
        stop = nl;
        nl = nl > 0 ? chunk.lastIndexOf(10, nl - 1) : -1;
      }
      chunk = chunk.subarray(0, stop);
      rest = chunk;
      end = start;
    }
    const first = rest.toString('utf8');
    if (first.length > 0) yield first;
  } finally {
    await fh.close();
  }
}

/**
 * Takes the index's lock without waiting (process/lock.ts: made whole, naming its holder; a
 * stale one taken over atomically); null when another process holds it or the folder is
 * read-only: the caller then works in memory.
 */
async function lock(dir: string): Promise<(() => Promise<void>) | null> {
  try {
    const release = await takeLock(dir, 'lock', () => null);
    return release ? async () => release() : null;
  } catch {
    return null;
  }
}

/**
 * The run index of `stateDir`'s log, brought up to date with the log (and saved, unless
 * another process is saving it or the folder is read-only).
 */
export async function openRunIndex(store: EventStore, stateDir: string): Promise<RunIndex> {
  const dir = dirOf(stateDir);
  const file = join(dir, 'ended.jsonl');
  let head: unknown = null;
  try {
    head = JSON.parse(await readFile(join(dir, 'head.json'), 'utf8'));
  } catch {
    head = null;
  }
  const ended: Ended[] = [];
  let open: Record<string, RunSummary> = {};
  let position = 0;
  let lastId: string | null = null;
  let bytes = 0;
  let endedCount = 0;
  let rebuilt = true;
  // A file shorter than the head says (cut, or lost) is rebuilt with the rest.
  const size = await stat(file).then(
    (st) => st.size,
    () => -1,
  );
  if (validHead(head) && size >= head.bytes) {
    // The head's own event must still be the one it folded; then only the events after it.
    let first = true;
    let stale = false;
    const next: Record<string, RunSummary> = structuredClone(head.open);
    for await (const e of store.readAll({ fromPosition: head.position, maxCount: 1 })) {
      first = false;
      stale = e.id !== head.lastId || e.position !== head.position;
    }
    if (!first && !stale) {
      const r = await fold(store, head.position + 1, next, ended);
      open = next;
      position = r.position || head.position;
      lastId = r.position ? r.lastId : head.lastId;
      bytes = head.bytes;
      endedCount = head.ended;
      rebuilt = false;
    }
  }
  if (rebuilt) {
    const r = await fold(store, 1, open, ended);
    position = r.position;
    lastId = r.lastId;
  }
  const validOld = validHead(head);
  const changed = rebuilt
    ? position > 0 || validOld
    : ended.length > 0 || position !== (head as Head).position;
  const text = ended.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (changed) {
    try {
      await mkdir(dir, { recursive: true });
      const unlock = await lock(dir);
      if (unlock) {
        try {
          if (rebuilt) {
            const tmp = `${file}.${process.pid}.tmp`;
            await writeFile(tmp, text);
            await rename(tmp, file);
          } else if (text.length > 0) {
            // Cut back to what the head covers (a crash may have left more), then append.
            await truncate(file, bytes).catch(async () => writeFile(file, ''));
            await writeFile(file, text, { flag: 'a' });
          }
          const newHead: Head = {
            format: FORMAT,
            version: RUN_HISTORY_VERSION,
            position,
            lastId,
            bytes: (rebuilt ? 0 : bytes) + Buffer.byteLength(text),
            ended: (rebuilt ? 0 : endedCount) + ended.length,
            open,
          };
          const tmp = join(dir, `head.json.${process.pid}.tmp`);
          await writeFile(tmp, JSON.stringify(newHead));
          await rename(tmp, join(dir, 'head.json'));
        } finally {
          await unlock();
        }
      }
    } catch {
      // A read-only state folder: the index is folded in memory (rebuilt next time).
    }
  }
  // Rebuilt, every ended run is in memory; else the file up to the head, then what was folded.
  const fileBytes = rebuilt ? 0 : bytes;
  return {
    open: Object.values(open),
    endedCount: (rebuilt ? 0 : endedCount) + ended.length,
    async *endedNewestFirst() {
      for (let i = ended.length - 1; i >= 0; i--) yield ended[i]!;
      for await (const line of linesBackward(file, fileBytes)) yield JSON.parse(line) as Ended;
    },
  };
}
