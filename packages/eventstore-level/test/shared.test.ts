import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecordedEvent } from '@xsmeta/core';
import { expect, it } from 'vitest';
import { SharedLevelEventStore } from '../src/index.js';

const built = existsSync(new URL('../dist/index.js', import.meta.url));

function child(dir: string, name: string, count: number): Promise<number | null> {
  const c = spawn(
    process.execPath,
    [new URL('./append-child.mjs', import.meta.url).pathname, dir, name, String(count)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve) => c.once('exit', resolve));
}

it.skipIf(!built)(
  'two processes appending to one log at the same time both record everything (needs dist: pnpm build)',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xsmeta-shared-'));
    try {
      const events = join(dir, 'events');
      const here = new SharedLevelEventStore(events);
      // This process appends too, while both children do.
      const mine = (async () => {
        for (let i = 0; i < 40; i++)
          await here.appendToStream('run-parent', [{ type: 'Step', data: { i } }]);
      })();
      const codes = await Promise.all([child(events, 'a', 60), child(events, 'b', 60), mine]);
      expect(codes.slice(0, 2)).toEqual([0, 0]);
      const all: RecordedEvent[] = [];
      for await (const e of here.readAll()) all.push(e);
      expect(all.map((e) => e.position)).toEqual(all.map((_, i) => i + 1));
      const count = (s: string) => all.filter((e) => e.stream === s).length;
      expect([count('run-a'), count('run-b'), count('run-parent')]).toEqual([60, 60, 40]);
      const a = all.filter((e) => e.stream === 'run-a');
      expect(a.map((e) => (e.data as { i: number }).i)).toEqual(a.map((_, i) => i));
      expect(a[0]!.metadata.pid).not.toBe(process.pid);
      await here.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

it('an open held by this process is waited for, and STORE_LOCKED after the bound', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-shared-'));
  const { ClassicLevel } = await import('classic-level');
  try {
    const events = join(dir, 'events');
    const seed = new SharedLevelEventStore(events);
    await seed.appendToStream('s', [{ type: 'Step', data: {} }]);
    // This process holds the folder a moment after its last operation; close() lets go now.
    await seed.close();
    const holder = new ClassicLevel(events);
    await holder.open();
    const quick = new SharedLevelEventStore(events, { waitMs: 50 });
    await expect(quick.appendToStream('s', [{ type: 'Step', data: {} }])).rejects.toMatchObject({
      code: 'STORE_LOCKED',
    });
    // A patient writer gets in once the holder lets go.
    const patient = new SharedLevelEventStore(events, { waitMs: 60_000 });
    const pending = patient.appendToStream('s', [{ type: 'Step', data: {} }]);
    await holder.close();
    expect(await pending).toMatchObject({ nextExpectedVersion: 1 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('a knock left by a process that is gone is removed, not obeyed', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-shared-'));
  try {
    const events = join(dir, 'events');
    const s = new SharedLevelEventStore(events);
    await s.appendToStream('s', [{ type: 'Step', data: {} }]);
    const { spawnSync } = await import('node:child_process');
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const { writeFileSync, existsSync: exists } = await import('node:fs');
    writeFileSync(`${events}.waiting`, `${gone}\n`);
    await s.appendToStream('s', [{ type: 'Step', data: {} }]);
    expect(exists(`${events}.waiting`)).toBe(false);
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('an idle holder lets go of the log when another process knocks, without another operation of its own', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'xsmeta-shared-'));
  const { ClassicLevel } = await import('classic-level');
  const { writeFileSync } = await import('node:fs');
  try {
    const events = join(dir, 'events');
    const s = new SharedLevelEventStore(events);
    await s.appendToStream('s', [{ type: 'Step', data: {} }]);
    // A live process (this one stands in for it) knocks: the holder, idle, closes the log
    // at its next look for a knock; the knocker then opens it.
    writeFileSync(`${events}.waiting`, `${process.pid}\n`);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const other = new ClassicLevel(events);
      try {
        await other.open();
        await other.close();
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setImmediate(r));
      }
    }
    await rm(`${events}.waiting`, { force: true });
    // Its next append opens the log again and finds where it left off.
    await s.appendToStream('s', [{ type: 'Step', data: {} }], { expectedVersion: 0 });
    await s.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it.skipIf(!built)(
  'a holder that let go for another process reads the last position again (needs dist: pnpm build)',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xsmeta-shared-'));
    try {
      const events = join(dir, 'events');
      const s = new SharedLevelEventStore(events);
      for (let i = 0; i < 5; i++)
        await s.appendToStream('run-p', [{ type: 'Step', data: { i } }], {
          expectedVersion: i === 0 ? 'no_stream' : i - 1,
        });
      // Another process knocks, gets the log (this one is idle: it lets go) and appends 3.
      expect(await child(events, 'c', 3)).toBe(0);
      // This one's next append must land after them, not over them.
      await s.appendToStream('run-p', [{ type: 'Step', data: { i: 5 } }], { expectedVersion: 4 });
      const all: RecordedEvent[] = [];
      for await (const e of s.readAll()) all.push(e);
      expect(all.map((e) => `${e.position} ${e.stream} ${e.version}`)).toEqual([
        '1 run-p 0',
        '2 run-p 1',
        '3 run-p 2',
        '4 run-p 3',
        '5 run-p 4',
        '6 run-c 0',
        '7 run-c 1',
        '8 run-c 2',
        '9 run-p 5',
      ]);
      await s.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
