import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ArchiveError, readArchive, writeArchive } from '../src/index.js';
import { payload, sha } from './helpers.js';

async function all(bytes: Uint8Array, limits = {}) {
  const out: { name: string; data: Uint8Array }[] = [];
  for await (const p of readArchive(bytes, limits)) out.push(p);
  return out;
}

async function* chunked(data: Uint8Array, n: number) {
  for (let i = 0; i < data.length; i += n) yield data.subarray(i, i + n);
}

describe('archive', () => {
  it('round-trips parts given as bytes and as streams, with sizes and hashes', async () => {
    const big = payload(9, 300_000);
    const s = await writeArchive(
      (async function* () {
        yield { name: 'manifest.json', data: new TextEncoder().encode('{"a":1}') };
        yield { name: 'vms/x.ova.tar', data: chunked(big, 7000) };
        yield { name: 'empty', data: new Uint8Array(0) };
      })(),
    );
    expect(s.parts.map((p) => [p.name, p.rawBytes])).toEqual([
      ['manifest.json', 7],
      ['vms/x.ova.tar', 300_000],
      ['empty', 0],
    ]);
    expect(s.parts[1]!.sha256).toBe(sha(big));
    expect(s.rawBytes).toBe(300_007);
    expect(s.storedBytes).toBe(s.bytes.length);
    const parts = await all(s.bytes);
    expect(parts.map((p) => p.name)).toEqual(['manifest.json', 'vms/x.ova.tar', 'empty']);
    expect(sha(parts[1]!.data)).toBe(sha(big));
  });

  it('keep: the parts passed over are checked but handed out empty; a damaged one still fails', async () => {
    const big = payload(3, 200_000);
    const s = await writeArchive(
      (async function* () {
        yield { name: 'pool-db.xml', data: chunked(big, 50_000) };
        yield { name: 'vms/a.ova.tar', data: new TextEncoder().encode('A') };
        yield { name: 'vm-map.json', data: new TextEncoder().encode('[]') };
      })(),
    );
    const keep = (n: string) => n !== 'pool-db.xml';
    const parts: { name: string; data: Uint8Array; sha256: string }[] = [];
    for await (const p of readArchive(s.bytes, { keep })) parts.push(p);
    expect(parts.map((p) => [p.name, p.data.length])).toEqual([
      ['pool-db.xml', 0],
      ['vms/a.ova.tar', 1],
      ['vm-map.json', 2],
    ]);
    // The sum of a part passed over is still computed and checked.
    expect(parts[0]!.sha256).toBe(sha(big));
    const bad = new Uint8Array(
      await writeArchive(
        (async function* () {
          yield { name: 'pool-db.xml', data: big };
        })(),
        { quality: 0 },
      ).then((a) => a.bytes),
    );
    // Flip a byte inside the compressed pool database: the reader refuses it kept or not.
    bad[bad.length >> 1]! ^= 0xff;
    await expect(
      (async () => {
        for await (const _ of readArchive(bad, { keep: () => false })) {
        }
      })(),
    ).rejects.toBeInstanceOf(ArchiveError);
  });

  it('compresses similar XML documents far below 0.15 of raw', async () => {
    const vm = (i: number) =>
      `<value><struct>${Array.from({ length: 120 }, (_, f) => `<member><name>field_${f}</name><value>${f % 7 === 0 ? `uuid-${i}-${(i * 7919 + f) % 10007}` : `value ${f}`}</value></member>`).join('')}</struct></value>`;
    const s = await writeArchive(
      Array.from({ length: 200 }, (_, i) => ({
        name: `vm${i}`,
        data: new TextEncoder().encode(vm(i)),
      })),
    );
    expect(s.storedBytes / s.rawBytes).toBeLessThan(0.15);
  });

  it('aborts early with ARCHIVE_TOO_LARGE past maxStoredBytes', async () => {
    const err = await writeArchive([{ name: 'x', data: new Uint8Array(randomBytes(2_000_000)) }], {
      maxStoredBytes: 100_000,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(ArchiveError);
    expect(err.code).toBe('ARCHIVE_TOO_LARGE');
  });

  it('enforces limits and detects damage', async () => {
    const s = await writeArchive([
      { name: 'a', data: payload(1, 10_000) },
      { name: 'b', data: payload(2, 10_000) },
    ]);
    await expect(all(s.bytes, { maxParts: 1 })).rejects.toMatchObject({ code: 'ARCHIVE_LIMIT' });
    await expect(all(s.bytes, { maxPartBytes: 5000 })).rejects.toMatchObject({
      code: 'ARCHIVE_LIMIT',
    });
    await expect(all(s.bytes.slice(0, s.bytes.length - 5))).rejects.toMatchObject({
      code: 'ARCHIVE_CORRUPT',
    });
    await expect(all(new Uint8Array(10))).rejects.toMatchObject({ code: 'ARCHIVE_CORRUPT' });
  });
});
