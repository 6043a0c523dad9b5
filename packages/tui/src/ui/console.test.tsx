import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { FAKE_VMS, FakeConsoleServices, type FakeOptions } from '../test-support/fake-services.js';
import { flat, KEYS, plain, press, tick, waitForFrame } from '../test-support/ink.js';
import { Console } from './Console.js';

const mounted: (() => void)[] = [];
afterEach(() => {
  for (const u of mounted.splice(0)) u();
});

async function open(options: FakeOptions = {}) {
  const services = new FakeConsoleServices(options);
  const r = render(<Console services={services} title="pool-1" />);
  mounted.push(r.unmount);
  const screen = (pred: string | ((f: string) => boolean)) => waitForFrame(r.lastFrame, pred);
  await screen('Backup, Restore and Update');
  return { services, r, screen, keys: (...k: string[]) => press(r.stdin, ...k) };
}

const DB = FAKE_VMS[1]!;

describe('the menu', () => {
  it('lists the four entries and Quit, and explains the selected one in the status pane', async () => {
    const { screen, keys } = await open();
    const first = await screen('Schedule Virtual Machine Metadata');
    for (const label of [
      'Backup Virtual Machine Metadata',
      'Restore Virtual Machine Metadata',
      'Restore Virtual Machine Metadata from Legacy Backup',
      'Quit',
    ]) {
      expect(first).toContain(label);
    }
    expect(first).toContain('› Schedule Virtual Machine Metadata');
    expect(first).toContain('<Enter> Change Schedule');
    await keys(KEYS.down, KEYS.down, KEYS.down);
    const legacy = await screen('› Restore Virtual Machine Metadata from Legacy Backup');
    expect(legacy).toContain('any VM can forge one');
    expect(legacy).not.toContain('Change Schedule');
  });
});

describe('backup', () => {
  it('backs up to the chosen SR and shows the size, the VM count and the ring', async () => {
    const { services, screen, keys } = await open();
    await keys(KEYS.down, KEYS.enter);
    const list = await screen('Back up the VM metadata to which');
    expect(list).toMatch(/› NFS shared storage\s+nfs\s+1\.17 TiB\s+backup disk \(default\)/);
    expect(list).toMatch(/iSCSI LUN 0\s+lvmoiscsi\s+80 GiB\s+no backup disk/);
    await keys(KEYS.enter);
    const done = await screen('Backup Successful');
    expect(done).toContain('Backup #4 of 2025-03-01 10:01:00 on NFS shared storage');
    expect(done).toContain(
      '4 VM(s) and 1 template(s), 8.79 KiB stored (39.1 KiB before compression)',
    );
    await screen('4 of 25 backups kept');
    expect(services.calls).toEqual(['listSrs', 'backup sr-nfs', 'listBackups sr-nfs']);
    expect(services.srs[0]!.ring!.records).toHaveLength(4);
    await keys(KEYS.enter);
    await screen('› Backup Virtual Machine Metadata');
  });

  it('says a backup disk will be created on an SR that has none, then backs up', async () => {
    const { services, screen, keys } = await open();
    await keys(KEYS.down, KEYS.enter);
    await screen('Back up the VM metadata to which');
    await keys(KEYS.down, KEYS.enter);
    await screen('iSCSI LUN 0 has no Pool Metadata Backup disk yet');
    expect(services.calls).not.toContain('backup sr-iscsi');
    await keys(KEYS.enter);
    await screen('Backup Successful');
    await screen('1 of 25 backups kept');
    expect(services.srs[1]!.ring!.records.map((r) => r.seq)).toEqual([1]);
  });

  it('shows a failure in plain words, and Enter goes back to the SR list', async () => {
    const { services, screen, keys } = await open({
      failBackup: { 'sr-nfs': 'The storage repository is read-only.' },
    });
    await keys(KEYS.down, KEYS.enter);
    await screen('Back up the VM metadata to which');
    await keys(KEYS.enter);
    const failed = await screen('Metadata Backup failed');
    expect(failed).toContain(
      'Metadata Backup failed: The storage repository is read-only. (BACKUP_FAILED)',
    );
    expect(failed).toContain('The backups already on NFS shared storage are unchanged.');
    expect(services.srs[0]!.ring!.records).toHaveLength(3);
    await keys(KEYS.enter);
    await screen('Back up the VM metadata to which');
    await keys(KEYS.escape);
    await screen('› Backup Virtual Machine Metadata');
  });

  it('shows progress, and Esc stops a backup under way (its signal fires)', async () => {
    const { services, screen, keys } = await open();
    services.pause();
    await keys(KEYS.down, KEYS.enter);
    await screen('Back up the VM metadata to which');
    await keys(KEYS.enter);
    await screen('Reading the pool database');
    await keys(KEYS.escape);
    const stopped = await screen('The backup was stopped');
    expect(stopped).toContain('Stopped before the record was written; nothing changed.');
    expect(services.calls).toContain('backup aborted');
    expect(services.srs[0]!.ring!.records).toHaveLength(3);
  });

  it('says so when the pool cannot list its SRs', async () => {
    const { screen, keys } = await open({ failListSrs: 'The pool master does not answer.' });
    await keys(KEYS.down, KEYS.enter);
    await screen('Metadata Backup failed: The pool master does not answer. (POOL_UNREACHABLE)');
    await keys(KEYS.enter);
    await screen('› Backup Virtual Machine Metadata');
  });
});

describe('restore', () => {
  async function toChoices(options: FakeOptions = {}) {
    const ctx = await open(options);
    await ctx.keys(KEYS.down, KEYS.down, KEYS.enter);
    await ctx.screen('Restore from the backups on which');
    await ctx.keys(KEYS.enter);
    const list = await ctx.screen('Select the metadata backup to restore from');
    return { ...ctx, list };
  }

  it('lists the backups with date, VM count, size and state, and the ring picture', async () => {
    const { list } = await toChoices();
    expect(list).toMatch(/› 2025-02-28 02:00:00\s+4 VM\(s\)\s+1 tmpl\s+8\.79 KiB\s+verified/);
    expect(list).toMatch(/2025-02-27 02:00:00 .* not checked/);
    expect(list).toMatch(/2025-02-26 02:00:00 .* DAMAGED: checksum mismatch in block 12/);
    expect(list).toContain('3 of 25 backups kept');
    expect(list).toMatch(/Kept {2}\[✗●●○+\]/);
  });

  it('refuses a damaged backup and says why', async () => {
    const { screen, keys } = await toChoices();
    await keys(KEYS.down, KEYS.down, KEYS.enter);
    await screen('The backup of 2025-02-26-02-00-00 is damaged: checksum mismatch in block 12');
  });

  it('runs a dry run with a failing VM, shows the summary and the failure, changes nothing', async () => {
    const { services, screen, keys } = await toChoices({
      failingVms: { [DB.uuid]: 'Network "storage" is missing from this pool.' },
    });
    await keys(KEYS.enter);
    const choices = await screen('Select the set of VMs to restore from 2025-02-28 02:00:00');
    for (const c of [
      'Only VMs on This SR',
      'All VM Metadata',
      'Only VMs on This SR (Dry Run)',
      'All VM Metadata (Dry Run)',
    ]) {
      expect(choices).toContain(c);
    }
    await keys(KEYS.down, KEYS.down);
    await screen('› Only VMs on This SR (Dry Run)');
    await keys(KEYS.enter);
    await screen('Every check runs; nothing in the pool changes.');
    expect(services.calls.some((c) => c.startsWith('restore '))).toBe(false);
    await keys(KEYS.enter);
    const summary = await screen('Restored 1 VM(s), and 1 error(s)');
    expect(summary).toContain('Dry run: nothing in the pool was changed.');
    expect(summary).toContain('› ✗ db-01: Network "storage" is missing from this pool.');
    expect(summary).toContain(`db-01 (${DB.uuid})`);
    expect(services.calls).toContain('restore sr-nfs 3 sr dry-run');
    expect(services.poolVms.size).toBe(0);

    // Enter goes back to the choices: now for real.
    await keys(KEYS.enter);
    await screen('Select the set of VMs to restore from');
    await keys(KEYS.up, KEYS.up, KEYS.enter);
    await screen('The VMs are created in this pool from their metadata');
    await keys(KEYS.enter);
    await screen('Restored 1 VM(s), and 1 error(s)');
    expect(services.calls).toContain('restore sr-nfs 3 sr');
    expect([...services.poolVms]).toEqual([FAKE_VMS[0]!.uuid]);
    await keys(KEYS.enter);
    await screen('› Restore Virtual Machine Metadata');
  });

  it('lists every failure and shows the selected one in full', async () => {
    const failingVms = Object.fromEntries(
      FAKE_VMS.map((v) => [v.uuid, `${v.name} cannot be imported.`]),
    );
    const { screen, keys } = await toChoices({ failingVms });
    await keys(KEYS.enter, KEYS.down, KEYS.enter, KEYS.enter);
    const summary = await screen('Restored 0 VM(s), and 5 error(s)');
    for (const v of FAKE_VMS)
      expect(summary).toContain(`✗ ${v.name}: ${v.name} cannot be imported.`);
    expect(summary).toContain(`web-01 (${FAKE_VMS[0]!.uuid})`);
    await keys(KEYS.down, KEYS.down);
    await screen(`mail-01 (${FAKE_VMS[2]!.uuid})`);
  });

  it('shows per-VM progress while restoring', async () => {
    const { services, screen, keys } = await toChoices();
    await keys(KEYS.enter, KEYS.down, KEYS.enter);
    await screen('Restore: All VM Metadata');
    services.pause();
    await keys(KEYS.enter);
    await screen('Restoring VM metadata from 2025-02-28 02:00:00');
    services.resume();
    await screen('Restored 5 VM(s), and 0 error(s)');
    expect(services.poolVms.size).toBe(5);
  });

  it('Esc backs out one step at a time, to the menu', async () => {
    const { screen, keys } = await toChoices();
    await keys(KEYS.enter);
    await screen('Select the set of VMs');
    await keys(KEYS.escape);
    await screen('Select the metadata backup to restore from');
    await keys(KEYS.escape);
    await screen('Restore from the backups on which');
    await keys(KEYS.escape);
    const menu = await screen('› Restore Virtual Machine Metadata');
    expect(menu).toContain('Run a dry run first');
  });

  it('points to the legacy entry when the SR has no backup disk', async () => {
    const { screen, keys } = await open();
    await keys(KEYS.down, KEYS.down, KEYS.enter);
    await screen('Restore from the backups on which');
    await keys(KEYS.down, KEYS.enter);
    await screen((f) =>
      flat(f).includes(
        "iSCSI LUN 0 holds no Pool Metadata Backup disk. If it holds a disk written by the old scripts, use 'Restore Virtual Machine Metadata from Legacy Backup'.",
      ),
    );
  });
});

describe('legacy restore', () => {
  async function toSrs(options: FakeOptions = {}) {
    const ctx = await open(options);
    await ctx.keys(KEYS.down, KEYS.down, KEYS.down, KEYS.enter);
    await ctx.screen('Restore from Legacy Backup');
    await ctx.screen('› Old NFS export');
    return ctx;
  }

  it('is unavailable, with the reason, on an SR holding a new-format backup disk', async () => {
    const { services, screen, keys } = await toSrs();
    await keys(KEYS.up, KEYS.up, KEYS.enter);
    const f = await screen('Legacy restore is not available on NFS shared storage.');
    expect(f).toContain('holds a new-format Pool Metadata Backup disk');
    expect(services.calls).not.toContain('listLegacyBackups sr-nfs');
    await keys(KEYS.enter);
    await screen('› NFS shared storage');
  });

  it('warns that legacy disks are untrusted, then restores from one (dry run)', async () => {
    const { services, screen, keys } = await toSrs();
    await keys(KEYS.enter);
    await screen('Only restore metadata from a disk you trust.');
    expect(services.calls).not.toContain('listLegacyBackups sr-old');
    await keys(KEYS.enter);
    const list = await screen('2019-06-02 03:00:00');
    expect(list).toMatch(/› 2019-06-02 03:00:00\s+3 VM\(s\)/);
    expect(list).toMatch(/2019-06-01 03:00:00\s+2 VM\(s\)/);
    await keys(KEYS.enter, KEYS.down, KEYS.down, KEYS.down, KEYS.enter, KEYS.enter);
    await screen('Restored 3 VM(s), and 0 error(s)');
    expect(services.calls).toContain('restoreLegacy sr-old 2019-06-02-03-00-00 all dry-run');
  });

  it('shows what the reader left out or doubted under the summary (the first three)', async () => {
    const notes = [
      'warning: the ext3 journal needs recovery',
      'skipped /metadata/2019-06-02-03-00-00/by-sr/x/a.vmmeta: the link points at "/etc/shadow"',
      'skipped /metadata/2019-06-02-03-00-00/all/b: not <uuid>.vmmeta',
      'skipped /metadata/2019-06-02-03-00-00/all/c: not <uuid>.vmmeta',
    ];
    const ctx = await toSrs({ legacyNotes: notes });
    await ctx.keys(KEYS.enter);
    await ctx.screen('Only restore metadata from a disk you trust.');
    await ctx.keys(KEYS.enter);
    await ctx.screen('2019-06-02 03:00:00');
    await ctx.keys(KEYS.enter, KEYS.down, KEYS.down, KEYS.down, KEYS.enter, KEYS.enter);
    const done = await ctx.screen('Restored 3 VM(s), and 0 error(s)');
    expect(done).toContain('Reading the backup, 4 thing(s) were left out or doubted:');
    expect(done).toContain('warning: the ext3 journal needs recovery');
    expect(done).toContain('… and 1 more (xsmeta legacy list shows them all)');
    expect(done).not.toContain('all/c: not');
  });
});

describe('schedule', () => {
  it('shows the current setting and next run, and changes it', async () => {
    const { services, screen, keys } = await open();
    await keys(KEYS.enter);
    const pick = await screen('Please select the desired frequency');
    expect(pick).toContain('Scheduled metadata backups are currently set to occur weekly.');
    expect(pick).toContain('Next run: 2025-03-08 10:00 UTC, to SR NFS shared storage (sr-nfs)');
    expect(pick).toContain('Last run: 2025-02-28 02:00 UTC, succeeded');
    expect(pick).toMatch(/› Weekly\s+\(current\)/);
    await keys(KEYS.down, KEYS.enter);
    const saved = await screen('Metadata Backup Schedule successfully changed to occur monthly.');
    expect(saved).toContain('Next run: 2025-03-31 10:00 UTC');
    expect(services.calls).toEqual(['getSchedule', 'setSchedule monthly', 'getSchedule']);
    await keys(KEYS.enter);
    await screen('› Schedule Virtual Machine Metadata');
  });

  it('disables it with Never, and Esc leaves without a change', async () => {
    const { services, screen, keys } = await open();
    await keys(KEYS.enter);
    await screen('Please select the desired frequency');
    await keys(KEYS.escape);
    await screen('› Schedule Virtual Machine Metadata');
    expect(services.calls).toEqual(['getSchedule']);
    await keys(KEYS.enter);
    await screen('Please select the desired frequency');
    await keys(KEYS.down, KEYS.down, KEYS.enter);
    await screen('Metadata Backup Schedule successfully disabled.');
  });
});

describe('login', () => {
  it('asks for credentials before an action, retries after a refusal, never shows the password', async () => {
    const { services, r, screen, keys } = await open({ password: 's3cret' });
    await keys(KEYS.down, KEYS.enter);
    const login = await screen('Login · Backup Virtual Machine Metadata');
    expect(login).toMatch(/Username\s+root/);
    expect(services.calls).toEqual([]);
    await keys('hunter2', KEYS.enter);
    await screen(
      'Login failed: The user name or password is wrong. (SESSION_AUTHENTICATION_FAILED)',
    );
    await keys('s3', 'cret');
    await screen(/Password\s+\*{6}_/.test.bind(/Password\s+\*{6}_/));
    await keys(KEYS.enter);
    await screen('Back up the VM metadata to which');
    expect(services.calls).toEqual(['login root', 'login root', 'listSrs']);
    expect(r.frames.map(plain).join('\n')).not.toMatch(/s3cret|hunter2|s3|cret/);
    // Logged in: the next action asks no more.
    await keys(KEYS.escape);
    await screen('› Backup Virtual Machine Metadata');
    await keys(KEYS.up, KEYS.enter);
    await screen('Please select the desired frequency');
  });

  it('Esc cancels the login and the action', async () => {
    const { services, screen, keys } = await open({ password: 'x' });
    await keys(KEYS.down, KEYS.down, KEYS.enter);
    await screen('Login · Restore Virtual Machine Metadata');
    await keys(KEYS.escape);
    await screen('› Restore Virtual Machine Metadata');
    await tick();
    expect(services.calls).toEqual([]);
  });
});

describe('untrusted text', () => {
  it('draws an SR name holding escape sequences escaped, never raw', async () => {
    const services = new FakeConsoleServices();
    (services.srs[0] as { name: string }).name = 'NFS\u001b[2J\u001b]0;owned\u0007';
    const r = render(<Console services={services} title={'pool\u001b[31m'} />);
    mounted.push(r.unmount);
    await waitForFrame(r.lastFrame, 'Backup, Restore and Update');
    await press(r.stdin, KEYS.down, KEYS.enter);
    const list = await waitForFrame(r.lastFrame, 'Back up the VM metadata to which');
    expect(list).toContain('NFS\\u001b[2J\\u001b]0;owned\\u0007');
    expect(list).toContain('pool\\u001b[31m');
    expect(list).not.toContain('\u001b[2J');
    expect(list).not.toContain('\u0007');
  });
});
