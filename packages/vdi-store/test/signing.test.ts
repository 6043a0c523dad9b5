import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryDevice, Ring } from '../src/index.js';
import { DATA_START } from '../src/ring/layout.js';
import { contents, label, payload, SR, sha, VDI } from './helpers.js';

const ID = { vdiUuid: VDI, srUuid: SR };
const admin = generateKeyPairSync('ed25519');
const intruder = generateKeyPairSync('ed25519');

async function signedRing() {
  const dev = new MemoryDevice(DATA_START + 64 * 4096);
  const ring = await Ring.format(dev, { ...ID, signingKey: admin.privateKey });
  for (let i = 1; i <= 3; i++)
    await ring.append({ label: label(`r${i}`), data: payload(i, 9000 + i), createdAt: i });
  return dev;
}

describe('authenticated records (opt-in, Ed25519)', () => {
  it('records signed with the admin key verify and read with the public key', async () => {
    const dev = await signedRing();
    const r = await Ring.open(dev, { readOnly: true, verifyKey: admin.publicKey });
    expect((await r.verify()).ok).toBe(true);
    expect(sha(await r.readAll(2))).toBe(sha(payload(2, 9002)));
    // Without a key, signed records read as any other (behaviour as before).
    expect(await contents(await Ring.open(dev, { readOnly: true }))).toHaveLength(3);
  });

  it('with a verify key, an unsigned record or one signed by another key is refused', async () => {
    const dev = await signedRing();
    // Whoever can write the disk appends a forged record: unsigned, then signed by their own key.
    await (await Ring.open(dev)).append({
      label: label('PWNED01'),
      data: payload(9, 500),
      createdAt: 10,
    });
    await (await Ring.open(dev, { signingKey: intruder.privateKey })).append({
      label: label('PWNED02'),
      data: payload(9, 500),
      createdAt: 11,
    });
    const r = await Ring.open(dev, { readOnly: true, verifyKey: admin.publicKey });
    const rep = await r.verify();
    expect(rep.ok).toBe(false);
    expect(rep.records).toMatchObject([
      {
        seq: 5,
        ok: false,
        code: 'RING_BAD_SIGNATURE',
        error: expect.stringMatching(/another key/),
      },
      { seq: 4, ok: false, code: 'RING_UNSIGNED', error: expect.stringMatching(/not signed/) },
      { seq: 3, ok: true },
      { seq: 2, ok: true },
      { seq: 1, ok: true },
    ]);
    await expect(r.readAll(4)).rejects.toMatchObject({ code: 'RING_UNSIGNED' });
  });

  it('a changed signature or signed content is refused', async () => {
    const dev = await signedRing();
    const r0 = await Ring.open(dev, { readOnly: true });
    const rec = r0.usage().records[1]!; // seq 2
    const img = dev.snapshot();
    // The trailer (not covered by the CRCs): after header, payload and label.
    img[DATA_START + rec.offset + 64 + 9002 + 2 + 5]! ^= 1;
    const r = await Ring.open(new MemoryDevice(img), {
      readOnly: true,
      verifyKey: admin.publicKey,
    });
    await expect(r.readAll(2)).rejects.toMatchObject({ code: 'RING_BAD_SIGNATURE' });
    expect(sha(await r.readAll(1))).toBe(sha(payload(1, 9001)));
  });

  it('signed records survive a lost root: rebuilt by a scan, they still verify', async () => {
    const dev = await signedRing();
    const img = dev.snapshot();
    img.fill(0, 0, DATA_START);
    const r = await Ring.open(new MemoryDevice(img), {
      readOnly: true,
      expect: ID,
      verifyKey: admin.publicKey,
    });
    expect(r.status.rebuilt).toBe(true);
    expect(r.list().map((x) => x.seq)).toEqual([3, 2, 1]);
    const rep = await r.verify();
    expect(rep.records.every((x) => x.ok)).toBe(true);
  });

  it('refuses keys of the wrong kind', async () => {
    const dev = await signedRing();
    await expect(Ring.open(dev, { verifyKey: admin.privateKey })).rejects.toMatchObject({
      code: 'RING_INVALID_ARGUMENT',
    });
  });
});
