import { createHash } from 'node:crypto';
import { MemoryDevice, Ring } from '../src/index.js';

export const SR = '00000000-0000-0000-0000-000000000000';
export const VDI = '581017e4-81dd-5c81-adf6-59e789731929';

/** Deterministic pseudo-random bytes for payloads. */
export { payload } from '../../../test-support/payload.js';

export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const label = (s: string) => new TextEncoder().encode(s);

/** Every record's seq and content hash, newest first, reading each in full. */
export async function contents(ring: Ring): Promise<string[]> {
  const out: string[] = [];
  for (const r of ring.list()) out.push(`${r.seq}:${sha(await ring.readAll(r.seq))}`);
  return out;
}

export async function freshRing(size: number, maxRecords = 25) {
  const dev = new MemoryDevice(size);
  const ring = await Ring.format(dev, { vdiUuid: VDI, srUuid: SR, maxRecords });
  return { dev, ring };
}
