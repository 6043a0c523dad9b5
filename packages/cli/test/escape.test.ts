import { XapiClient } from '@xsmeta/xapi';
import { expect, it, vi } from 'vitest';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { errorLine, stdio } from '../src/output.js';
import { capture, pool, withEnv } from './support.js';

const ESC = '\u001b';
const EVIL = `evil${ESC}]0;owned\u0007${ESC}[2J${ESC}[31m\nRestored VM fake`;
/** The C0, DEL and C1 characters of a string but line breaks. */
const controls = (s: string) =>
  [...s].filter((ch) => {
    const c = ch.charCodeAt(0);
    return (c < 0x20 && ch !== '\n') || (c >= 0x7f && c <= 0x9f);
  });

it('a VM name holding escape sequences is printed escaped by a restore, never raw', async () => {
  const p = await pool({ vms: 2, srs: 1 });
  await withEnv(p.env, async () => {
    const x = await XapiClient.connect({ url: p.sim.url, username: 'root', password: 'xsmeta' });
    const [ref] = [
      ...(await x.getAllRecords<{ is_control_domain: boolean; is_a_template: boolean }>('VM')),
    ].find(([, v]) => !v.is_control_domain && !v.is_a_template)!;
    await x.call('VM.set_name_label', ref, EVIL);
    await x.logout();
    expect(await xsmeta(['backup', '--create'], capture())).toBe(0);
    const io = capture();
    expect(await xsmeta(['restore', '--dry-run', '--force'], io)).toBe(0);
    const line = io.stdout.find((l) => l.includes('evil'));
    expect(line).toMatch(
      /^Would restore VM evil\\u001b\]0;owned\\u0007\\u001b\[2J\\u001b\[31m\\u000aRestored VM fake \(/,
    );
    expect(io.stdout.flatMap(controls)).toEqual([]);
  });
  await p.close();
});

it('what the CLI prints on stdout and stderr holds no control character but line breaks and tabs', () => {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    stdio.out(`a\t${EVIL}`);
    stdio.err(JSON.stringify({ name: `x\u009b2J` }));
    expect(out.mock.calls[0]![0]).toBe(
      'a\tevil\\u001b]0;owned\\u0007\\u001b[2J\\u001b[31m\nRestored VM fake\n',
    );
    expect(JSON.parse(String(err.mock.calls[0]![0]))).toEqual({ name: 'x\u009b2J' });
    expect(String(err.mock.calls[0]![0])).toBe('{"name":"x\\u009b2J"}\n');
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
  expect(errorLine('xsmeta', new Error(`no VM ${EVIL}`))).toBe(
    'xsmeta: no VM evil\\u001b]0;owned\\u0007\\u001b[2J\\u001b[31m',
  );
});
