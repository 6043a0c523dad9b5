import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KNOWN_EVENT_TYPES, MemoryEventStore } from '@xsmeta/core';
import { ClassicLevel } from 'classic-level';
import { MemoryLevel } from 'memory-level';
import { Packr } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { type EventLevel, LevelEventStore, SharedLevelEventStore } from '../src/index.js';
import { eventStoreSuite } from '../src/test-suite.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp() {
  const d = await mkdtemp(join(tmpdir(), 'xsmeta-events-'));
  dirs.push(d);
  return d;
}
const classic = (dir: string) =>
  new ClassicLevel<string, Uint8Array>(dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
  }) as unknown as EventLevel;

eventStoreSuite('MemoryEventStore', async () => new MemoryEventStore());
eventStoreSuite('LevelEventStore on memory-level', async () =>
  LevelEventStore.open(
    new MemoryLevel<string, Uint8Array>({
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    }) as unknown as EventLevel,
  ),
);
eventStoreSuite('LevelEventStore on classic-level', async () =>
  LevelEventStore.open(classic(await tmp())),
);
eventStoreSuite(
  'SharedLevelEventStore (open-append-close)',
  async () => new SharedLevelEventStore(join(await tmp(), 'events')),
);

describe('LevelEventStore specifics', () => {
  it('persists across reopen and continues positions', async () => {
    const dir = await tmp();
    const a = await LevelEventStore.open(classic(dir));
    await a.appendToStream('s', [
      { type: 'BackupFailed', data: { runId: 'r', srUuid: null, code: 'X', reason: 'y' } },
    ]);
    await a.close();
    const b = await LevelEventStore.open(classic(dir));
    const r = await b.appendToStream(
      's',
      [{ type: 'BackupFailed', data: { runId: 'r2', srUuid: null, code: 'X', reason: 'y' } }],
      { expectedVersion: 0 },
    );
    expect(r.lastPosition).toBe(2);
    await b.close();
  });

  it('a second process-level open of the same directory fails with STORE_LOCKED naming it', async () => {
    const dir = await tmp();
    const a = await LevelEventStore.open(classic(dir), { location: dir });
    const err = await LevelEventStore.open(classic(dir), { location: dir }).catch((e) => e);
    expect(err.code).toBe('STORE_LOCKED');
    expect(err.message).toContain(dir);
    await a.close();
  });

  it('reports corrupt and unknown payloads with their position', async () => {
    const db = new MemoryLevel<string, Uint8Array>({
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    }) as unknown as EventLevel;
    const s = await LevelEventStore.open(db, { knownTypes: KNOWN_EVENT_TYPES });
    await s.appendToStream('a', [
      { type: 'BackupFailed', data: { runId: 'r', srUuid: null, code: 'X', reason: 'y' } },
    ]);
    await s.appendToStream('a', [
      { type: 'BackupFailed', data: { runId: 'r', srUuid: null, code: 'X', reason: 'y' } },
    ]);
    await db.put('e!0000000000000002', Uint8Array.of(0xc1, 0xff, 0x00));
    const read = async () => {
      for await (const _ of s.readAll()) {
        // consume
      }
    };
    await expect(read()).rejects.toMatchObject({ code: 'EVENT_CORRUPT', position: 2 });
    const packr = new Packr({ useRecords: false });
    await db.put(
      'e!0000000000000002',
      packr.pack({ s: 'a', v: 1, t: 'SomethingNew', a: new Date().toISOString(), d: {}, x: 1 }),
    );
    await expect(read()).rejects.toMatchObject({ code: 'EVENT_UNKNOWN_TYPE', position: 2 });
  });

  it('upgrades old event shapes through upcasters', async () => {
    const db = new MemoryLevel<string, Uint8Array>({
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    }) as unknown as EventLevel;
    const packr = new Packr({ useRecords: false });
    await db.open();
    await db.batch([
      {
        type: 'put',
        key: 'e!0000000000000001',
        value: packr.pack({
          s: 'schedule',
          v: 0,
          t: 'ScheduleChanged',
          a: '2026-01-01T00:00:00.000Z',
          d: { to: 'daily' },
          x: 0,
        }),
      },
      { type: 'put', key: 's!schedule!0000000000', value: packr.pack(1) },
      { type: 'put', key: 'h!schedule', value: packr.pack(0) },
      { type: 'put', key: '!meta!last', value: packr.pack(1) },
    ]);
    const s = await LevelEventStore.open(db, {
      upcasters: {
        'ScheduleChanged@0': (d) => ({ from: 'never', by: 'unknown', at: '', ...(d as object) }),
      },
    });
    for await (const e of s.readAll())
      expect(e.data).toMatchObject({ from: 'never', to: 'daily', by: 'unknown' });
  });
});
