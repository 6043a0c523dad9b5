import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XapiClient } from '@xsmeta/xapi';
import { expect, it } from 'vitest';
import { startSimulator } from '../src/index.js';

/** Reads a response one chunk per turn of the event loop, so the server often waits to drain. */
function slowRead(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          res.pause();
          setImmediate(() => res.resume());
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

it('streams a large dump to a slow reader without piling up listeners on the response', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'xapi-sim-stream-'));
  const s = await startSimulator({ stateDir, vms: 300, srs: 2, seed: 3 });
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  try {
    const c = await XapiClient.connect({ url: s.url, username: 'root', password: 'xsmeta' });
    const session = c.sessionRef;
    const got = await slowRead(`${s.url}/pool/xmldbdump?session_id=${encodeURIComponent(session)}`);
    // Enough to make the server wait for the socket to drain many times over.
    expect(got).toBeGreaterThan(2 * 1024 * 1024);
    await c.logout();
  } finally {
    process.off('warning', onWarning);
    await s.close();
    await rm(stateDir, { recursive: true, force: true });
  }
  expect(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning'))).toEqual([]);
}, 120_000);
