import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClassicLevel } from 'classic-level';
import { expect, it } from 'vitest';
import { type EventLevel, LevelEventStore } from '../src/index.js';

const built = existsSync(new URL('../dist/index.js', import.meta.url));

it.skipIf(!built)(
  'a process killed mid-append leaves whole appends or none (needs dist: pnpm build)',
  async () => {
    for (let round = 0; round < 5; round++) {
      const dir = await mkdtemp(join(tmpdir(), 'xsmeta-kill-'));
      const child = spawn(
        process.execPath,
        [new URL('./kill-child.mjs', import.meta.url).pathname, dir],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      // Killed right after a chosen number of appends: while the next one is under way.
      const after = [0, 1, 3, 7, 12][round]!;
      await new Promise<void>((resolve) => {
        let text = '';
        child.stdout.on('data', (b: Buffer) => {
          text += b.toString();
          if ((text.match(/^appended /gm) ?? []).length >= after && text.includes('ready\n'))
            resolve();
        });
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const store = await LevelEventStore.open(
        new ClassicLevel<string, Uint8Array>(dir, {
          keyEncoding: 'utf8',
          valueEncoding: 'view',
        }) as unknown as EventLevel,
      );
      const perStream = new Map<string, number>();
      let positions = 0;
      for await (const e of store.readAll()) {
        positions++;
        expect(e.position).toBe(positions);
        perStream.set(e.stream, (perStream.get(e.stream) ?? 0) + 1);
      }
      // At least the batches reported before the kill are there, each whole.
      expect(perStream.size).toBeGreaterThanOrEqual(after);
      for (const [stream, n] of perStream) expect([stream, n]).toEqual([stream, 50]);
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
