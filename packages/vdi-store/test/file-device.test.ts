import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { requireTools } from '../../../test-support/tools.js';
import { openFileDevice, Ring } from '../src/index.js';
import { label, payload, SR, sha, VDI } from './helpers.js';

const dir = await mkdtemp(join(tmpdir(), 'vdi-store-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

it('works on a real sparse 500 MiB file, and read-only opens never write', async () => {
  const path = join(dir, 'disk.img');
  await writeFile(path, '');
  await truncate(path, 500 * 1024 * 1024);
  const dev = await openFileDevice(path);
  expect(dev.size).toBe(500 * 1024 * 1024);
  const ring = await Ring.format(dev, { vdiUuid: VDI, srUuid: SR });
  await ring.append({ label: label('x'), data: payload(1, 3_000_000) });
  await ring.close();
  const ro = await Ring.open(await openFileDevice(path, { readOnly: true }), { readOnly: true });
  expect(sha(await ro.readAll(1))).toBe(sha(payload(1, 3_000_000)));
  await expect(ro.append({ label: label(''), data: payload(2, 1) })).rejects.toMatchObject({
    code: 'RING_READ_ONLY',
  });
  await ro.close();
  await expect(openFileDevice(join(dir, 'missing'))).rejects.toMatchObject({ code: 'RING_IO' });
});

it('tells an ext3 filesystem (an old xe-backup-metadata disk) from a blank disk, and reads it only', async () => {
  requireTools('mke2fs');
  const path = join(dir, 'ext3.img');
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext3', '-b', '1024', path, '8M'], {
    stdio: 'ignore',
  });
  const before = createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
  // Ring.open leaves the device to its caller when it refuses: closed here, not left to GC.
  const ext3 = await openFileDevice(path, { readOnly: true });
  try {
    await expect(Ring.open(ext3)).rejects.toMatchObject({ code: 'RING_FOREIGN' });
  } finally {
    await ext3.close();
  }
  expect(
    createHash('sha256')
      .update(await readFile(path))
      .digest('hex'),
  ).toBe(before);
  // A blank disk of the same size is simply not formatted yet.
  const blank = join(dir, 'blank.img');
  await writeFile(blank, '');
  await truncate(blank, 8 * 1024 * 1024);
  const blankDev = await openFileDevice(blank, { readOnly: true });
  try {
    await expect(Ring.open(blankDev)).rejects.toMatchObject({ code: 'RING_NOT_FORMATTED' });
  } finally {
    await blankDev.close();
  }
});
