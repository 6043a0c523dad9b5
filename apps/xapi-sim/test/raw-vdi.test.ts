// GET /export_raw_vdi and PUT /import_raw_vdi in raw and vhd formats, as export_raw_vdi.ml,
// import_raw_vdi.ml and vhd_tool_wrapper.ml serve them, and a PUT cut part-way.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeVhd,
  encodeVhd,
  type TaskRecord,
  type VdiRecord,
  VHD_BLOCK,
  XapiClient,
} from '@xsmeta/xapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { newVdi as newTestVdi, xapiFailure } from '../../../test-support/xapi.js';
import { type Simulator, startSimulator } from '../src/index.js';

let sim: Simulator;
let dir: string;
let c: XapiClient;
const SIZE = 8 * 1024 * 1024;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xapi-raw-'));
  sim = await startSimulator({ stateDir: dir, vms: 2, srs: 1, seed: 3 });
  c = await XapiClient.connect({ url: sim.url, username: 'root', password: 'xsmeta' });
});

afterAll(async () => {
  await c.logout();
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

/** A VDI of SIZE bytes and the file SR's image of it. */
async function newVdi(): Promise<{ ref: string; path: string }> {
  const v = await newTestVdi(c, { size: SIZE, name: 'raw test' });
  return { ref: v.ref, path: join(dir, 'sr', v.srUuid, `${v.uuid}.img`) };
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const x of it) out.push(Buffer.from(x));
  return Buffer.concat(out);
}

const failure = (p: Promise<unknown>) => xapiFailure(p);

/** A raw HTTP exchange with the simulator: status and the task's final record. */
function exchange(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Uint8Array,
): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${sim.url}${path}`, { method, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The task once the simulator has finished it (a bound for a busy machine, not a race). */
async function taskOutcome(task: string): Promise<TaskRecord> {
  let t: TaskRecord | undefined;
  await until(async () => {
    t = await c.getRecord<TaskRecord>('task', task);
    return t.status !== 'pending';
  }, `task ${task} to finish`);
  return t!;
}

describe('raw VDI handlers', () => {
  it('exports raw as the whole disk and vhd as only its non-zero 2 MiB blocks', async () => {
    const { ref, path } = await newVdi();
    const data = randomBytes(300_000);
    await c.importRawVdi(
      ref,
      new Uint8Array(Buffer.concat([Buffer.alloc(VHD_BLOCK * 2 + 5), data])),
    );
    const image = await readFile(path);
    const raw = await drain(await c.exportRawVdi(ref, { format: 'raw' }));
    expect(raw.length).toBe(SIZE);
    expect(raw.equals(image)).toBe(true);
    const vhd = await drain(await c.exportRawVdi(ref, { format: 'vhd' }));
    // footer + header + gap + BAT sector, one block (bitmap + 2 MiB), footer
    expect(vhd.length).toBe(2048 + 512 + 512 + VHD_BLOCK + 512);
    const back = Buffer.alloc(SIZE);
    let allocated: number[] = [];
    for await (const ev of decodeVhd([vhd])) {
      if (ev.kind === 'layout') allocated = ev.layout.allocated;
      if (ev.kind === 'data') back.set(ev.data, ev.offset);
    }
    expect(allocated).toEqual([2]);
    expect(back.equals(image)).toBe(true);
  });

  it('imports a vhd writing only the sectors its bitmaps carry', async () => {
    const { ref, path } = await newVdi();
    const before = randomBytes(SIZE);
    await c.importRawVdi(ref, new Uint8Array(before));
    const block = new Uint8Array(VHD_BLOCK).fill(0xab);
    const bitmap = new Uint8Array(512);
    bitmap[0] = 0b0100_0000; // sector 1 of the block only
    const { pieces, length } = encodeVhd(SIZE, [{ index: 1, data: block, bitmap }]);
    await c.importRawVdi(ref, new Uint8Array(Buffer.concat(pieces)), { format: 'vhd', length });
    const after = await readFile(path);
    const expected = Buffer.from(before);
    expected.fill(0xab, VHD_BLOCK + 512, VHD_BLOCK + 1024);
    expect(after.equals(expected)).toBe(true);
  });

  it('an import cut part-way keeps what came before the cut, the rest as it was, and fails its task', async () => {
    const { ref, path } = await newVdi();
    const before = randomBytes(SIZE);
    await c.importRawVdi(ref, new Uint8Array(before));
    const blocks = [0, 1, 2].map((index) => ({
      index,
      data: new Uint8Array(VHD_BLOCK).fill(index + 1),
    }));
    const { pieces, length } = encodeVhd(SIZE, blocks);
    // Cut inside the second block's data. vhd-tool reads a block's run of set sectors whole
    // before writing it (f.ml `From_input.openstream`): block 0 lands, blocks 1 and 2 do not.
    const firstData = 2048 + 512 + 512;
    const cutAt = firstData + VHD_BLOCK + 512 + 4096;
    sim.faults.set({ cut: [{ match: '/import_raw_vdi', afterBytes: cutAt, times: 1 }] });
    try {
      const e = await failure(
        c.importRawVdi(ref, new Uint8Array(Buffer.concat(pieces)), { format: 'vhd', length }),
      );
      expect(e.code).toBe('VDI_IO_ERROR');
    } finally {
      sim.faults.clear();
    }
    const after = await readFile(path);
    expect(after.subarray(0, VHD_BLOCK).every((x) => x === 1)).toBe(true);
    expect(after.subarray(VHD_BLOCK).equals(before.subarray(VHD_BLOCK))).toBe(true);
  });

  it('fails the task of a cut import with VDI_IO_ERROR', async () => {
    const { ref } = await newVdi();
    const task = await c.call<string>('task.create', 't', '');
    sim.faults.set({ cut: [{ match: '/import_raw_vdi', afterBytes: 1000, times: 1 }] });
    const { pieces } = encodeVhd(SIZE, [{ index: 0, data: new Uint8Array(VHD_BLOCK).fill(7) }]);
    const body = new Uint8Array(Buffer.concat(pieces));
    await exchange(
      'PUT',
      `/import_raw_vdi?session_id=${c.sessionRef}&task_id=${task}&vdi=${ref}&format=vhd`,
      { 'content-length': String(body.length) },
      body,
    ).catch(() => ({ status: 0 }));
    sim.faults.clear();
    const t = await taskOutcome(task);
    expect([t.status, t.error_info]).toEqual(['failure', ['VDI_IO_ERROR', 'Device I/O errors']]);
  });

  it('refuses what import_raw_vdi.ml refuses, with its errors', async () => {
    const { ref, path } = await newVdi();
    const vdi = await c.getRecord<VdiRecord>('VDI', ref);
    const image = await readFile(path);
    const cases: [string, Record<string, string>, number, string[]][] = [
      [
        `vdi=${ref}&format=bogus`,
        { 'content-length': '4' },
        404,
        ['INTERNAL_ERROR', 'Unknown format bogus'],
      ],
      [
        `vdi=${ref}&format=vhd&chunked=true`,
        { 'content-length': '4' },
        404,
        ['INTERNAL_ERROR', 'Cannot handle chunked VHD'],
      ],
      [
        `vdi=${vdi.uuid}&format=raw`,
        { 'transfer-encoding': 'chunked' },
        404,
        ['INTERNAL_ERROR', 'Cannot handle encoding: chunked'],
      ],
      [`format=raw`, { 'content-length': '4' }, 400, ['VDI_MISSING']],
      [
        `vdi=00000000-0000-4000-8000-000000000000`,
        { 'content-length': '4' },
        500,
        ['UUID_INVALID', 'VDI', '00000000-0000-4000-8000-000000000000'],
      ],
    ];
    for (const [q, headers, status, error] of cases) {
      const task = await c.call<string>('task.create', 't', '');
      const r = await exchange(
        'PUT',
        `/import_raw_vdi?session_id=${c.sessionRef}&task_id=${task}&${q}`,
        headers,
        new Uint8Array(4).fill(9),
      );
      expect(r.status).toBe(status);
      const t = await taskOutcome(task);
      expect([t.status, t.error_info]).toEqual(['failure', error]);
    }
    expect((await readFile(path)).equals(image)).toBe(true);
    const task = await c.call<string>('task.create', 't', '');
    const r = await exchange(
      'GET',
      `/export_raw_vdi?session_id=${c.sessionRef}&task_id=${task}&vdi=${ref}&format=qcow`,
      {},
    );
    expect(r.status).toBe(404);
    expect((await taskOutcome(task)).error_info).toEqual(['INTERNAL_ERROR', 'Unknown format qcow']);
    const anon = await exchange('GET', `/export_raw_vdi?vdi=${ref}`, {});
    expect(anon.status).toBe(401);
  });

  it('add_to_other_config refuses a key already there (MAP_DUPLICATE_KEY), as on a master', async () => {
    const { ref } = await newVdi();
    await c.call('VDI.add_to_other_config', ref, 'xsmeta-lock', 'a');
    const e = await failure(c.call('VDI.add_to_other_config', ref, 'xsmeta-lock', 'b'));
    expect([e.code, e.params]).toEqual([
      'MAP_DUPLICATE_KEY',
      ['VDI', 'other_config', ref, 'xsmeta-lock'],
    ]);
    expect((await c.getRecord<VdiRecord>('VDI', ref)).other_config['xsmeta-lock']).toBe('a');
  });
});
