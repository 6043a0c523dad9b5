import { expect, it } from 'vitest';
import { joinRecord } from '../src/app/record-frame.js';
import {
  type ArchivePort,
  type DiskPort,
  encodeLabel,
  type RingPort,
  runRestore,
} from '../src/index.js';
import { stubPool } from './stub-pool.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const N = 60;

/**
 * A record of N VM exports restored with parallel 4: the exports are decoded again as the
 * imports ask for them, so at no point do more than a few sit decoded and not yet imported,
 * whatever N is (the record is never held decoded as a whole).
 */
async function restoreOf(opts: { dryRun: boolean; networks: boolean }) {
  // A fake archive: JSON of [name, text]; it counts the parts it hands out.
  let handedOut = 0;
  const keptNames: string[] = [];
  const archive: ArchivePort = {
    write: () => Promise.reject(new Error('unused')),
    async *read(bytes, opts) {
      for (const [name, text] of JSON.parse(dec.decode(bytes)) as [string, string][]) {
        handedOut++;
        const kept = opts?.keep?.(name) ?? true;
        if (kept) keptNames.push(name);
        yield {
          name,
          data: kept ? enc.encode(text) : new Uint8Array(0),
          sha256: `h${name}${text.length}`,
        };
      }
    },
  };
  const vms = Array.from({ length: N }, (_, i) => ({
    uuid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
    name: `vm${i}`,
    isTemplate: false,
    srUuids: ['sr'],
  }));
  const parts: [string, string][] = [
    ['pool-db.xml', '<db/>'],
    ...vms.map((v): [string, string] => [`vms/${v.uuid}.ova.tar`, `export of ${v.name}`]),
    ['srmeta.xml', '<meta></meta>'],
    ['vm-map.json', JSON.stringify(vms)],
  ];
  const manifest = {
    formatVersion: 1,
    poolUuid: 'p',
    parts: parts.map(([name, text]) => ({
      name,
      rawBytes: text.length,
      sha256: `h${name}${text.length}`,
    })),
  };
  const record = joinRecord(
    enc.encode(JSON.stringify(parts)),
    enc.encode(JSON.stringify([['manifest.json', JSON.stringify(manifest)]])),
  );
  const label = encodeLabel({
    date: '2026-11-25-00-00-00',
    createdAt: 0,
    formatVersion: 1,
    poolUuid: 'p',
    srUuid: 'sr',
    vmCount: N,
    templateCount: 0,
    rawBytes: 1,
  });
  const ring = {
    list: () => [{ seq: 1, createdAt: 0, size: record.length, label }],
    readAll: async () => record,
    close: async () => {},
  } as unknown as RingPort;
  const disk = { open: async () => ring } as unknown as DiskPort;
  let imported = 0;
  let maxAhead = 0;
  let firstPass = 0;
  const pool = stubPool({
    attach: async () => ({ devicePath: '/dev/x', detach: async () => {} }),
    async importMetadata(body: Uint8Array) {
      // Parts handed out in the second decoding but not imported yet.
      maxAhead = Math.max(maxAhead, handedOut - firstPass - imported);
      expect(dec.decode(body)).toMatch(/^export of vm/);
      await Promise.resolve();
      imported++;
    },
    ...(opts.networks
      ? {
          networks: async () => [],
          exportNetworks: (body: Uint8Array) => [
            { name: `net of ${dec.decode(body).length % 3}`, bridge: '' },
          ],
        }
      : {}),
  });
  const clock = { now: () => new Date(0) };
  const origRead = archive.read.bind(archive);
  let passes = 0;
  archive.read = (bytes, o) => {
    if (dec.decode(bytes).startsWith('[["pool-db.xml"') && ++passes === 2) firstPass = handedOut;
    return origRead(bytes, o);
  };
  const r = await runRestore(
    { pool, disk, archive, clock, events: null },
    { mode: 'all', dryRun: opts.dryRun, force: false, parallel: 4 },
  );
  return { r, passes, maxAhead, keptNames };
}

it('restore holds a few parts at a time, not the record', async () => {
  const { r, passes, maxAhead } = await restoreOf({ dryRun: true, networks: false });
  expect(r.vms.filter((v) => v.ok)).toHaveLength(N);
  expect(passes).toBe(2);
  // At most the parallel imports plus the part in hand (plus pool-db.xml passed over).
  expect(maxAhead).toBeLessThanOrEqual(6);
});

it('a real restore that minds the networks decodes the record twice, and holds no part it passes over', async () => {
  const { r, passes, maxAhead, keptNames } = await restoreOf({ dryRun: false, networks: true });
  expect(r.vms.filter((v) => v.ok)).toHaveLength(N);
  // Once to check every part, once for the imports (the networks are read from the exports
  // as they are imported, not in passes of their own).
  expect(passes).toBe(2);
  expect(maxAhead).toBeLessThanOrEqual(6);
  // The check keeps only the VM map and SRMETA, the imports only the VM exports.
  expect(keptNames.filter((n) => !n.startsWith('vms/'))).toEqual([
    'manifest.json',
    'srmeta.xml',
    'vm-map.json',
  ]);
  expect(keptNames.filter((n) => n.startsWith('vms/'))).toHaveLength(N);
});

it('a record whose manifest is not JSON, or lists no parts, is BACKUP_INVALID (a restore skips it)', async () => {
  const { readRecord } = await import('../src/app/restore.js');
  const archive: ArchivePort = {
    write: () => Promise.reject(new Error('unused')),
    async *read(bytes) {
      for (const [name, text] of JSON.parse(dec.decode(bytes)) as [string, string][])
        yield { name, data: enc.encode(text), sha256: 'h' };
    },
  };
  const listing = { date: '2026-11-25-00-00-00', seq: 1 } as Parameters<typeof readRecord>[2];
  for (const manifest of ['{not json', JSON.stringify({ formatVersion: 1, poolUuid: 'p' })]) {
    const record = joinRecord(
      enc.encode('[]'),
      enc.encode(JSON.stringify([['manifest.json', manifest]])),
    );
    await expect(readRecord(archive, record, listing)).rejects.toMatchObject({
      code: 'BACKUP_INVALID',
    });
  }
});
