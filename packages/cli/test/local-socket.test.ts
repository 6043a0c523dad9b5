/**
 * On a pool host xsconsole and cron run the compatibility commands with no environment at all
 * (plugins-base/XSFeatureDRBackup.py and XSFeatureDRRestore.py of xsconsole,
 * scripts/backup-metadata-cron of xen-api): they must find xapi's local socket and log in
 * there as local root, as xe does (ocaml/xapi/xapi_session.ml trusts that socket's peer).
 *
 * The simulator serves its API on its own Unix socket too, where (as xapi does on
 * /var/lib/xcp/xapi) a root login is trusted whatever its password: the commands send none,
 * and the pool's password here is not empty, so only that trust lets them in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupVdiUuid, XapiClient } from '@xsmeta/xapi';
import { startSimulator } from '@xsmeta/xapi-sim';
import { describe, expect, it } from 'vitest';
import { main as xeBackup } from '../src/bin/xe-backup-metadata.js';
import { main as xeRestore } from '../src/bin/xe-restore-metadata.js';
import { main as xsmeta } from '../src/bin/xsmeta.js';
import { capture } from './support.js';

/** Runs fn with process.env holding exactly env (nothing inherited). */
async function onlyEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(process.env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

describe('no environment on a pool host: the local socket, as local root', () => {
  it('runs what xsconsole and the cron wrapper run, exactly as they call it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xsmeta-sock-'));
    const sim = await startSimulator({
      stateDir: join(dir, 'sim'),
      vms: 4,
      srs: 2,
      seed: 5,
      socket: join(dir, 'xapi'),
    });
    const sock = sim.socketPath;
    expect(sim.env.XSMETA_PASSWORD).not.toBe('');
    try {
      const xapi = await XapiClient.connect({
        url: sim.url,
        username: 'root',
        password: sim.env.XSMETA_PASSWORD!,
      });
      const [poolRec] = (await xapi.getAllRecords<{ default_SR: string }>('pool')).values();
      const sr = await xapi.call<string>('SR.get_uuid', poolRec!.default_SR);
      await xapi.logout();
      // Only what a pool host has on its own: the socket, the inventory, the device folder
      // (and a state folder in the test's own directory, not the machine's /var/lib).
      const env = {
        XSMETA_SOCKET: sock,
        XSMETA_INVENTORY: sim.env.XSMETA_INVENTORY!,
        XSMETA_DEV_DIR: sim.env.XSMETA_DEV_DIR!,
        XSMETA_STATE_DIR: join(dir, 'state'),
      };
      await onlyEnv(env, async () => {
        // XSFeatureDRBackup.py: -n first (3: no disk yet), then -c -u SR.
        const probe = capture();
        expect(await xeBackup(['-n', '-u', sr], probe)).toBe(3);
        expect(probe.stderr.join('\n')).not.toMatch(/NO_URL|NO_PASSWORD/);
        const made = capture();
        expect(await xeBackup(['-c', '-u', sr], made)).toBe(0);
        const found = capture();
        expect(await xeBackup(['-n', '-u', sr], found)).toBe(0);
        expect(found.stdout).toEqual([backupVdiUuid(sr)]);
        // backup-metadata-cron: `xe-backup-metadata -c`, to the pool's default SR.
        expect(await xeBackup(['-c'], capture())).toBe(0);
        // XSFeatureDRRestore.py: -p -u SR, then -l -u SR -x VDI, then a dry run.
        const vdis = capture();
        expect(await xeRestore(['-p', '-u', sr], vdis)).toBe(0);
        expect(vdis.stdout).toEqual([backupVdiUuid(sr)]);
        const dates = capture();
        expect(await xeRestore(['-l', '-u', sr, '-x', backupVdiUuid(sr)], dates)).toBe(0);
        expect(dates.stdout).toHaveLength(2);
        // As the console's restore lists them first: -l -u SR, the disk found by its uuid.
        const listed = capture();
        expect(await xeRestore(['-l', '-u', sr], listed)).toBe(0);
        expect(listed.stdout).toEqual(dates.stdout);
        const dry = capture();
        const code = await xeRestore(
          ['-y', '-u', sr, '-x', backupVdiUuid(sr), '-d', dates.stdout[0]!, '-m', 'all', '-n'],
          dry,
        );
        // It reached the pool and tried every VM: on the pool it was taken from, each still
        // exists, so xapi's import refuses it as not newer (ocaml/xapi/import.ml).
        const last = dry.stdout.at(-1) ?? '';
        expect(last).toMatch(/^Restored 0 VM\(s\), and [1-9]\d* error\(s\)$/);
        expect(dry.stdout.join('\n')).toMatch(/VM_TO_IMPORT_IS_NOT_NEWER_VERSION/);
        expect(code).toBe(Number(/and (\d+) error/.exec(last)?.[1]));
      });
      // xsmeta takes the socket as a flag too.
      const { XSMETA_SOCKET: _, ...noSocket } = env;
      await onlyEnv(noSocket, async () => {
        const list = capture();
        expect(await xsmeta(['list', '--socket', sock, '--sr', sr, '--json'], list)).toBe(0);
        expect(JSON.parse(list.stdout[0]!)).toHaveLength(2);
      });
    } finally {
      await sim.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('with no URL and no socket, the clear error stays', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'xsmeta-nosock-'));
    try {
      await onlyEnv(
        { XSMETA_SOCKET: join(dir, 'absent'), XSMETA_STATE_DIR: join(dir, 'state') },
        async () => {
          const io = capture();
          expect(await xsmeta(['list'], io)).toBe(1);
          expect(io.stderr).toEqual([
            'xsmeta: NO_URL: no pool to talk to: set --url https://POOL-MASTER or XSMETA_URL',
          ]);
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
