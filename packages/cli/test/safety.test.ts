import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { bin, built } from './bins.js';
import { allEvents, pool } from './support.js';

/** A pool whose simulator records every call, and the number of logins seen so far. */
async function watched(vms = 4) {
  const calls: string[] = [];
  const p = await pool({ vms, log: (l) => calls.push(l.trim()) });
  const logins = () => calls.filter((c) => c.startsWith('session.login')).length;
  return { ...p, calls, logins };
}

async function backups(env: Record<string, string>): Promise<number> {
  const r = await bin('xsmeta', ['list', '--json'], env);
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as unknown[]).length;
}

it.skipIf(!built)(
  're-initialising asks: n, no, /dev/null and a closed stdin abort with exit 1 and change nothing; yes goes ahead (needs dist)',
  async () => {
    const p = await watched();
    expect((await bin('xe-backup-metadata', ['-c'], p.env)).code).toBe(0);
    expect((await bin('xe-backup-metadata', [], p.env)).code).toBe(0);
    expect(await backups(p.env)).toBe(2);
    const before = p.logins();
    for (const stdin of ['n\n', 'no\n', 'null', 'closed'] as const) {
      const r = await bin('xe-backup-metadata', ['-i'], p.env, stdin);
      expect(r.code, `stdin ${stdin}`).toBe(1);
      expect(r.stderr).toContain('destroys every backup');
      expect(r.stderr).toContain('Aborted: nothing was changed');
    }
    // Refused before connecting: the pool saw no login at all.
    expect(p.logins()).toBe(before);
    expect(await backups(p.env)).toBe(2);
    const before2 = JSON.parse((await bin('xsmeta', ['list', '--json'], p.env)).stdout) as {
      seq: number;
      date: string;
    }[];
    const yes = await bin('xe-backup-metadata', ['-i'], p.env, 'yes\n');
    expect(yes.code).toBe(0);
    expect(await backups(p.env)).toBe(1);
    // The history records what the re-initialisation destroyed.
    const h = (await allEvents(p.env.XSMETA_STATE_DIR!)) as unknown as {
      type: string;
      data: { reinitialised?: { destroyed: { seq: number; date: string }[] } };
    }[];
    const reinit = h.filter((e) => e.type === 'BackupWritten' && e.data.reinitialised);
    expect(reinit).toHaveLength(1);
    expect(reinit[0]!.data.reinitialised!.destroyed).toEqual(
      before2.map((b) => ({ seq: b.seq, date: b.date })),
    );
    // -y answers for the operator.
    expect((await bin('xe-backup-metadata', ['-i', '-y'], p.env)).code).toBe(0);
    await p.close();
  },
  120_000,
);

it.skipIf(!built)(
  'a restore names its backup, then asks: any answer but yes, or nothing to read, aborts with nothing restored (needs dist)',
  async () => {
    const p = await watched();
    expect((await bin('xsmeta', ['backup', '--create'], p.env)).code).toBe(0);
    const list = JSON.parse((await bin('xsmeta', ['list', '--json'], p.env)).stdout) as {
      date: string;
      seq: number;
      srUuid: string;
    }[];
    const b = list[0]!;
    const named = `the backup of ${b.date} (seq ${b.seq}, format 1) on SR ${b.srUuid}`;
    const runs = [
      await bin('xsmeta', ['restore', '--force'], p.env, 'no\n'),
      await bin('xsmeta', ['restore', '--force'], p.env, 'n\n'),
      await bin('xsmeta', ['restore'], p.env, 'closed'),
      await bin('xe-restore-metadata', ['-f', '-m', 'sr'], p.env, 'null'),
      await bin('xe-restore-metadata', ['-f'], p.env, 'yes please\n'),
    ];
    for (const r of runs) {
      expect(r.code).toBe(1);
      // Which backup, before anything starts; the question names it too.
      expect(r.stderr).toContain(`Using ${named}, VDI `);
      expect(r.stderr).toMatch(
        new RegExp(
          `from ${named.replace(/[()]/g, '\\$&')} into the pool\\. Type 'yes' to continue`,
        ),
      );
      expect(r.stderr).toContain('Aborted: nothing was changed');
      expect(r.stdout).not.toMatch(/Restored/);
    }
    // Nothing was restored: the history holds no restore.
    expect(
      (await allEvents(p.env.XSMETA_STATE_DIR!)).filter((e) => /^Restore/.test(e.type)),
    ).toEqual([]);
    // A dry run changes nothing, so it does not ask; yes on a pipe is an answer, as upstream's
    // `read` takes it.
    expect((await bin('xe-restore-metadata', ['-n', '-f'], p.env, 'null')).code).toBe(0);
    const yes = await bin('xsmeta', ['restore', '--force'], p.env, 'yes\n');
    expect(yes.code).toBe(0);
    expect(yes.stdout).toMatch(/Restored \d+ VM\(s\), and 0 error\(s\)/);
    await p.close();
  },
  120_000,
);

it.skipIf(!built)(
  'xe-backup-metadata -d refuses with one clear line and a non-zero exit, and never backs up (needs dist)',
  async () => {
    const p = await watched();
    expect((await bin('xe-backup-metadata', ['-c'], p.env)).code).toBe(0);
    const before = p.logins();
    const r = await bin('xe-backup-metadata', ['-d'], p.env);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/-d is not supported: xsmeta never mounts the backup disk/);
    expect(r.stdout).toBe('');
    expect(p.logins()).toBe(before);
    expect(await backups(p.env)).toBe(1);
    await p.close();
  },
  120_000,
);

it.skipIf(!built)(
  'a state folder that is a file fails up front, before any command connects or changes the pool (needs dist)',
  async () => {
    const p = await watched();
    expect((await bin('xsmeta', ['backup', '--create'], p.env)).code).toBe(0);
    const file = join(p.dir, 'not-a-folder');
    writeFileSync(file, '');
    const env = { ...p.env, XSMETA_STATE_DIR: file };
    const before = p.logins();
    for (const [name, args] of [
      ['xe-restore-metadata', ['-y', '-f']],
      ['xsmeta', ['restore', '--yes', '--force']],
      ['xsmeta', ['backup']],
      ['xe-backup-metadata', ['-i', '-y']],
      ['xsmeta', ['schedule', 'daily']],
    ] as const) {
      const r = await bin(name, [...args], env);
      expect(r.code, `${name} ${args.join(' ')}`).toBe(1);
      expect(r.stderr).toContain(
        `BAD_STATE_DIR: the state folder ${file} is not a writable folder`,
      );
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(p.logins()).toBe(before);
    expect(await backups(p.env)).toBe(1);
    await p.close();
  },
  120_000,
);
