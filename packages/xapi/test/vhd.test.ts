// The dynamic VHD codec: the layout vhd-tool writes (ocaml/libs/vhd/vhd_format/f.ml
// `vhd_from_raw`) and the reading of bitmaps (`From_input.openstream`).
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeVhd, encodeVhd, VHD_BLOCK, VhdError, type VhdEvent } from '../src/index.js';

const be32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at);
const be64 = (b: Uint8Array, at: number) =>
  Number(new DataView(b.buffer, b.byteOffset).getBigUint64(at));
const sum = (b: Uint8Array, skip: number) => {
  let s = 0;
  for (let i = 0; i < b.length; i++) if (i < skip || i >= skip + 4) s += b[i]!;
  return ~s >>> 0;
};

async function collect(chunks: Iterable<Uint8Array>, pieceSectors?: number) {
  const out: VhdEvent[] = [];
  for await (const e of decodeVhd(chunks, pieceSectors ? { pieceSectors } : {})) out.push(e);
  return out;
}

describe('VHD codec', () => {
  it('writes the layout of vhd-tool: footer, header at 512, BAT at 2048, blocks, footer', () => {
    const size = 10 * 1024 * 1024 + 1; // rounded up to 6 blocks
    const data = new Uint8Array(VHD_BLOCK).fill(5);
    const { pieces, length } = encodeVhd(size, [{ index: 4, data }], { now: Date.UTC(2020, 0, 1) });
    const all = Buffer.concat(pieces);
    expect(all.length).toBe(length);
    const foot = all.subarray(0, 512);
    expect(foot.subarray(0, 8).toString()).toBe('conectix');
    expect(be64(foot, 16)).toBe(512);
    expect(be64(foot, 48)).toBe(6 * VHD_BLOCK);
    expect(be32(foot, 60)).toBe(3);
    expect(be32(foot, 64)).toBe(sum(foot, 64));
    expect(be32(foot, 24)).toBe(631_152_000); // 2020-01-01 in the VHD epoch
    expect(all.subarray(length - 512).equals(foot)).toBe(true);
    const head = all.subarray(512, 1536);
    expect(head.subarray(0, 8).toString()).toBe('cxsparse');
    expect(be64(head, 16)).toBe(2048);
    expect(be32(head, 28)).toBe(6);
    expect(be32(head, 32)).toBe(VHD_BLOCK);
    expect(be32(head, 36)).toBe(sum(head, 36));
    const bat = all.subarray(2048, 2560);
    expect([0, 1, 2, 3, 4, 5].map((i) => be32(bat, i * 4))).toEqual([
      0xffffffff,
      0xffffffff,
      0xffffffff,
      0xffffffff,
      2560 / 512,
      0xffffffff,
    ]);
    expect(all.subarray(2560, 2560 + 512).every((x) => x === 0xff)).toBe(true);
    expect(all.subarray(3072, 3072 + VHD_BLOCK).equals(data)).toBe(true);
  });

  it('round-trips blocks and partial bitmaps, in pieces when asked', async () => {
    const a = new Uint8Array(randomBytes(VHD_BLOCK));
    const b = new Uint8Array(randomBytes(VHD_BLOCK));
    const bitmap = new Uint8Array(512);
    bitmap[1] = 0b1000_0001; // sectors 8 and 15
    const { pieces } = encodeVhd(4 * VHD_BLOCK, [
      { index: 3, data: b, bitmap },
      { index: 0, data: a },
    ]);
    // Feed it in awkward chunk sizes.
    const all = Buffer.concat(pieces);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < all.length; i += 7777) chunks.push(all.subarray(i, i + 7777));
    const ev = await collect(chunks);
    expect(ev[0]).toEqual({
      kind: 'layout',
      layout: { size: 4 * VHD_BLOCK, blockSize: VHD_BLOCK, allocated: [0, 3] },
    });
    const data = ev.filter((e) => e.kind === 'data');
    expect(data.map((d) => [d.offset, d.data.length])).toEqual([
      [0, VHD_BLOCK],
      [3 * VHD_BLOCK + 8 * 512, 512],
      [3 * VHD_BLOCK + 15 * 512, 512],
    ]);
    expect(Buffer.from(data[0]!.data).equals(a)).toBe(true);
    expect(Buffer.from(data[2]!.data).equals(b.subarray(15 * 512, 16 * 512))).toBe(true);
    const small = (await collect(chunks, 64)).filter((e) => e.kind === 'data');
    expect(small[0]!.data.length).toBe(64 * 512);
  });

  it('refuses a truncated or foreign stream', async () => {
    const { pieces } = encodeVhd(VHD_BLOCK, [{ index: 0, data: new Uint8Array(VHD_BLOCK) }]);
    const all = Buffer.concat(pieces);
    await expect(collect([all.subarray(0, all.length - 100)])).rejects.toBeInstanceOf(VhdError);
    const bad = Buffer.from(all);
    bad[600]! ^= 1; // header byte: checksum no longer matches
    await expect(collect([bad])).rejects.toThrow(/header checksum/);
    await expect(collect([Buffer.alloc(4096)])).rejects.toThrow(/not a VHD/);
    expect(() => encodeVhd(VHD_BLOCK, [{ index: 1, data: new Uint8Array(VHD_BLOCK) }])).toThrow(
      VhdError,
    );
  });
});
