import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_VMS, FakeConsoleServices } from '../test-support/fake-services.js';
import { flat, KEYS, plain, press, renderSized, waitForFrame } from '../test-support/ink.js';
import { Console } from './Console.js';

const mounted: (() => void)[] = [];
afterEach(() => {
  for (const u of mounted.splice(0)) u();
});

function at(columns: number, rows: number, services = new FakeConsoleServices()) {
  const r = renderSized(<Console services={services} />, { columns, rows });
  mounted.push(r.unmount);
  const screen = (pred: string | ((f: string) => boolean)) => waitForFrame(r.lastFrame, pred);
  return { r, services, screen, keys: (...k: string[]) => press(r.stdin, ...k) };
}

/** Every frame fits the terminal: at most rows - 1 lines (Ink then never clears the screen). */
function expectFits(frame: string, columns: number, rows: number) {
  const lines = frame.split('\n');
  expect(lines.length).toBeLessThanOrEqual(rows - 1);
  for (const l of lines) expect(Array.from(l).length).toBeLessThanOrEqual(columns);
}

describe('layout', () => {
  it('fits 80x24 on every screen of a backup and a restore, menu entries on one line each', async () => {
    const long = 'The network this VM was attached to is missing from this pool. '.repeat(3);
    const { r, screen, keys, services } = at(
      80,
      24,
      new FakeConsoleServices({ failingVms: { [FAKE_VMS[0]!.uuid]: long } }),
    );
    // A long ring: more backups than the list has lines, so it must scroll.
    const ring = services.srs[0]!.ring!;
    for (let seq = 4; seq <= 25; seq++) {
      ring.records.push({
        ...ring.records[2]!,
        seq,
        date: `2025-03-${String(seq).padStart(2, '0')}-02-00-00`,
      });
    }
    const menu = await screen('Quit');
    expect(menu).toContain('Restore Virtual Machine Metadata from Legacy Backup');
    await keys(KEYS.down, KEYS.enter);
    await screen('Back up the VM metadata to which');
    await keys(KEYS.enter);
    await screen('Backup Successful');
    // Typed without waiting for the screens: no key is lost between two dialogs.
    await keys(KEYS.enter, KEYS.down, KEYS.enter);
    await screen('Restore from the backups on which');
    await keys(KEYS.enter);
    const list = await screen('Select the metadata backup to restore from');
    expect(list).toMatch(/↓ \d+ more/);
    expect(list).toContain('25 of 25 backups kept');
    await keys(KEYS.enter, KEYS.enter, KEYS.enter);
    const summary = await screen('Restored 1 VM(s), and 1 error(s)');
    // The list cuts the long message; the selected failure shows it whole, wrapped.
    expect(summary).toMatch(/› ✗ web-01: The network .*…/);
    expect(flat(summary)).toContain(long.trim());
    for (const f of r.stdout.frames) expectFits(plain(f), 80, 24);
  });

  it('puts the menu and the status pane side by side on a wide terminal, and follows resizes', async () => {
    const { r, screen } = at(130, 40);
    const wide = await screen('Quit');
    expect(wide).toMatch(
      /Backup, Restore and Update\s+││ Schedule Virtual Machine Metadata Backup/,
    );
    r.stdout.resize(80, 24);
    const narrow = await screen((f) => f.split('\n').length <= 23);
    expect(narrow).not.toContain('││');
    expectFits(narrow, 80, 24);
  });

  it('asks for a bigger terminal when it is too small', async () => {
    const { screen } = at(50, 12);
    const f = await screen('needs a terminal');
    expect(flat(f)).toContain(
      'The console needs a terminal of at least 80x24 (this one is 50x12).',
    );
  });
});
