import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockDeviceSuite, type ReadableDevice } from '@xsmeta/vdi-store/test-support';
import { afterAll } from 'vitest';
import { openImage } from '../src/index.js';

const dir = await mkdtemp(join(tmpdir(), 'legacy-dev-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const paths = new WeakMap<ReadableDevice, string>();
let n = 0;

// The old scripts' disks are only ever read: no write cases. A read past the end of an image
// is a damaged (truncated) legacy disk.
blockDeviceSuite(
  'legacy-compat read-only image (openImage)',
  { writable: false, outOfRangeCode: 'LEGACY_CORRUPT' },
  {
    async open(image) {
      const path = join(dir, `${n++}.img`);
      await writeFile(path, image);
      const dev = await openImage(path);
      paths.set(dev, path);
      return dev;
    },
    bytes: async (dev) => new Uint8Array(await readFile(paths.get(dev)!)),
  },
);
