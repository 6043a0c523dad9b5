/**
 * `xsmeta history` reads the run index beside the log only as far as it prints: the newest
 * page by default (--all for every run), --since no further back than it asks; the index
 * follows the log (new events, a replaced log, a crash between its file and its head).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryEventStore } from '@xsmeta/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HISTORY_PAGE } from '../src/commands/options.js';
import { printHistory } from '../src/history.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'xsmeta-run-index-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A log of `n` backups, one a minute from 2026-01-01T00:00Z (run i started at minute i). */
async function log(n: number) {
  let t = Date.parse('2026-01-01T00:00:00Z');
  const store = new MemoryEventStore({ now: () => new Date(t) });
  for (let i = 0; i < n; i++) await backup(store, i, () => (t += 60_000));
  return { store, tick: () => (t += 60_000) };
}
async function backup(store: MemoryEventStore, i: number, tick: () => number) {
  const runId = `r${i}`;
  tick();
  await store.appendToStream(`backup-${runId}`, [
    { type: 'BackupStarted', data: { runId, srUuid: 'sr' } },
  ]);
  await store.appendToStream(`backup-${runId}`, [
    { type: 'BackupWritten', data: { runId, srUuid: 'sr', seq: i, vmCount: 1, templateCount: 0 } },
  ]);
}
async function history(store: MemoryEventStore, q: { since?: string; all?: boolean } = {}) {
  const out: string[] = [];
  expect(await printHistory(store, dir, { json: false, ...q }, (l) => out.push(l))).toBe(0);
  return out;
}
const ids = (lines: string[]) => lines.flatMap((l) => /run (r\d+)/.exec(l)?.[1] ?? []);
const file = () => join(dir, 'projections', 'run-history', 'ended.jsonl');

describe('the run index of xsmeta history', () => {
  it('shows the newest page, says there is more, and --all shows every run', async () => {
    const { store } = await log(HISTORY_PAGE + 10);
    const page = await history(store);
    expect(ids(page)).toEqual(
      Array.from({ length: HISTORY_PAGE }, (_, i) => `r${HISTORY_PAGE + 9 - i}`),
    );
    expect(page.at(-1)).toBe(`(the newest ${HISTORY_PAGE} shown: --all shows every run)`);
    expect(ids(await history(store, { all: true }))).toHaveLength(HISTORY_PAGE + 10);
    // A program reading --json gets every run.
    const json: string[] = [];
    await printHistory(store, dir, { json: true }, (l) => json.push(l));
    expect(JSON.parse(json[0]!)).toHaveLength(HISTORY_PAGE + 10);
  });

  it('a lock left empty, or naming a dead process, does not keep the index from being saved', async () => {
    const { store } = await log(3);
    const d = join(dir, 'projections', 'run-history');
    mkdirSync(d, { recursive: true });
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    for (const left of ['', `${dead}\n`, JSON.stringify({ host: hostname(), pid: dead })]) {
      rmSync(file(), { force: true });
      writeFileSync(join(d, 'lock'), left);
      expect(ids(await history(store))).toEqual(['r2', 'r1', 'r0']);
      // Saved: the index holds the three ended runs, and the lock is gone again.
      expect(readFileSync(file(), 'utf8').trim().split('\n')).toHaveLength(3);
      expect(existsSync(join(d, 'lock'))).toBe(false);
    }
  });

  it('reads only what it prints: older lines of the index are never parsed', async () => {
    const { store } = await log(HISTORY_PAGE + 10);
    await history(store);
    // Spoil the oldest run's line: a listing that stops in time never meets it.
    const lines = readFileSync(file(), 'utf8').split('\n');
    lines[0] = '#'.repeat(lines[0]!.length);
    writeFileSync(file(), lines.join('\n'));
    expect(ids(await history(store))).toHaveLength(HISTORY_PAGE);
    expect(ids(await history(store, { since: '2026-01-01T00:50:00Z' }))).toHaveLength(11);
    await expect(history(store, { all: true })).rejects.toThrow();
  });

  it('follows the log: new runs are appended, a replaced log rebuilds it', async () => {
    const { store, tick } = await log(3);
    expect(ids(await history(store))).toEqual(['r2', 'r1', 'r0']);
    const before = readFileSync(file(), 'utf8');
    await backup(store, 3, tick);
    expect(ids(await history(store))).toEqual(['r3', 'r2', 'r1', 'r0']);
    expect(readFileSync(file(), 'utf8').startsWith(before)).toBe(true);
    // Another log in the same place (restored from elsewhere): rebuilt from it.
    const other = (await log(2)).store;
    expect(ids(await history(other))).toEqual(['r1', 'r0']);
  });

  it('a crash after the file grew and before the head was written adds no run twice', async () => {
    const { store, tick } = await log(2);
    await history(store);
    // What a crashed update left: a line the head does not cover.
    writeFileSync(
      file(),
      `${readFileSync(file(), 'utf8')}${readFileSync(file(), 'utf8').split('\n')[1]}\n`,
    );
    await backup(store, 2, tick);
    expect(ids(await history(store))).toEqual(['r2', 'r1', 'r0']);
  });
});
