import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';

const main = new URL('../dist/main.js', import.meta.url).pathname;

it.skipIf(!existsSync(main))(
  'the walkthrough restores every VM with 0 errors and leaves nothing behind (needs dist)',
  async () => {
    const env = { ...process.env };
    delete env.XSMETA_CRON_DIR;
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [main], {
      timeout: 280_000,
      env,
    });
    // The schedule's cron entry went to the demo's temporary folder, not the machine's.
    expect(stderr).toMatch(/Installed the cron entry \/\S+\/xsmeta-demo-\w+\/cron\.d\/xsmeta/);
    expect(stderr).not.toContain('/etc/cron.d');
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('Restored 34 VM(s), and 0 error(s)');
    expect(stdout).toContain('34 of 34 VMs and templates back with their uuid and name');
    expect(stdout).toContain('VMs in the pool after the dry run: 0');
  },
  300_000,
);
