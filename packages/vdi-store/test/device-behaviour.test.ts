import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { type BlockDevice, MemoryDevice, openFileDevice } from '../src/index.js';
import { blockDeviceSuite } from '../src/test-support/index.js';

blockDeviceSuite(
  'MemoryDevice',
  { writable: true, outOfRangeCode: 'RING_TRUNCATED' },
  {
    open: async (image, { readOnly }) => new MemoryDevice(image, readOnly),
    bytes: async (dev) => dev.snapshot(),
  },
);

const dir = await mkdtemp(join(tmpdir(), 'vdi-store-dev-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const paths = new WeakMap<BlockDevice, string>();
let n = 0;

blockDeviceSuite(
  'file device (openFileDevice)',
  { writable: true, outOfRangeCode: 'RING_TRUNCATED' },
  {
    async open(image, { readOnly }) {
      const path = join(dir, `${n++}.img`);
      await writeFile(path, image);
      const dev = await openFileDevice(path, { readOnly });
      paths.set(dev, path);
      return dev;
    },
    bytes: async (dev) => new Uint8Array(await readFile(paths.get(dev)!)),
  },
);
