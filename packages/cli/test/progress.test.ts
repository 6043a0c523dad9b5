import { expect, it } from 'vitest';
import { resolveSettings } from '../src/config.js';
import { barLine, progressBar, type Tick } from '../src/process/progress.js';
import { backup } from '../src/services.js';
import { bin, built } from './bins.js';
import { capture, pool, withEnv } from './support.js';

/** What a terminal shows after these writes: `\r\x1b[K` erases the current line. */
function screen(writes: string[]): string[] {
  const lines: string[] = [''];
  const erase = '\r\u001b[K';
  for (const w of writes)
    w.split(erase).forEach((chunk, i) => {
      if (i > 0) lines[lines.length - 1] = '';
      chunk.split('\n').forEach((text, j) => {
        if (j > 0) lines.push('');
        lines[lines.length - 1] += text;
      });
    });
  return lines;
}

it('the bar shows VMs and templates done/total, bytes, rate and time left', () => {
  expect(barLine({ phase: 'restore', done: 5, total: 20, bytes: 3 * 1024 * 1024 }, 2000)).toBe(
    'Restoring [######..................] 5/20 VMs and templates  3.0 MiB  1.5 MiB/s  ETA 0:06',
  );
  expect(barLine({ phase: 'capture', done: 20, total: 20, bytes: 2048 }, 1000)).toBe(
    'Capturing [########################] 20/20 VMs and templates  2.0 KiB  2.0 KiB/s',
  );
});

it('lines printed beside the bar are never glued to it: the bar is erased, the line printed, the bar drawn again', () => {
  const writes: string[] = [];
  const term = {
    isTTY: true,
    out: (l: string) => writes.push(`${l}\n`),
    err: (l: string) => writes.push(`${l}\n`),
  };
  let t = 0;
  const bar = progressBar(term, { enabled: true, write: (s) => writes.push(s), now: () => t });
  for (let i = 1; i <= 3; i++) {
    t += 200;
    bar.tick({ phase: 'restore', done: i, total: 3, bytes: i * 100 });
    bar.io.out(`Would restore VM vm-${i}`);
  }
  bar.end();
  bar.io.out('Restored 3 VM(s), and 0 error(s)');
  const shown = screen(writes).filter((l) => l !== '');
  expect(shown).toEqual([
    'Would restore VM vm-1',
    'Would restore VM vm-2',
    'Would restore VM vm-3',
    'Restored 3 VM(s), and 0 error(s)',
  ]);
  // While it ran, the bar stood on the line below the last printed one.
  expect(screen(writes.slice(0, 4)).at(-1)).toMatch(/^Restoring \[#+\.+\] 1\/3 VMs and templates/);
});

it('no bar when it is off (stderr not a terminal, or --json): nothing is written', () => {
  const writes: string[] = [];
  const io = capture();
  const bar = progressBar(io, { enabled: false, write: (s) => writes.push(s) });
  bar.tick({ phase: 'capture', done: 1, total: 1, bytes: 1 });
  bar.io.out('x');
  bar.end();
  expect(writes).toEqual([]);
  expect(bar.io).toBe(io);
});

it("the capture's count is the summary's: VMs plus templates, not the pool database and SR metadata", async () => {
  const p = await pool({ vms: 6 });
  await withEnv(p.env, async () => {
    const ticks: Tick[] = [];
    const r = await backup(
      resolveSettings({}),
      {
        create: true,
        reinit: false,
        findOnly: false,
        wait: false,
        progress: (t) => ticks.push(t),
      },
      capture(),
    );
    const last = ticks.filter((t) => t.phase === 'capture').at(-1)!;
    expect(r.templateCount).toBeGreaterThan(0);
    expect(last.done).toBe(r.vmCount + r.templateCount);
    expect(last.total).toBe(r.vmCount + r.templateCount);
    expect(last.bytes).toBeGreaterThan(0);
  });
  await p.close();
}, 60_000);

it.skipIf(!built)(
  'with stderr not a terminal, backup and restore print no bar (needs dist)',
  async () => {
    const p = await pool({ vms: 3 });
    const b = await bin('xsmeta', ['backup', '--create'], p.env);
    const r = await bin('xsmeta', ['restore', '--yes', '--force'], p.env);
    for (const x of [b, r]) {
      expect(x.code).toBe(0);
      expect(x.stderr).not.toContain('\r');
      expect(x.stdout).not.toContain('\r');
    }
    await p.close();
  },
  60_000,
);
