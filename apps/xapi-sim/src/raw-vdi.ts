// The raw-VDI handlers, as xapi serves them:
//   GET /export_raw_vdi: ocaml/xapi/export_raw_vdi.ml `localhost_handler` (vhd-tool `stream`,
//     ocaml/xapi/vhd_tool_wrapper.ml `send`), PUT /import_raw_vdi: ocaml/xapi/import_raw_vdi.ml
//     `localhost_handler` (vhd-tool `serve`, vhd_tool_wrapper.ml `receive`).
// Formats (ocaml/xapi/importexport.ml `Format.of_req`): `raw` (the default), `vhd`; `tar` and
// `qcow2` exist in xapi but are not simulated. Neither handler takes a byte range: an export
// always streams the whole disk (vhd: only its non-zero 2 MiB blocks, ocaml/libs/vhd/vhd_format/
// f.ml `Raw_input.vhd`), an import writes what its body holds (vhd: only the sectors whose
// bitmap bit is set, f.ml `From_input.openstream`), and writes each piece as it arrives, so an
// import cut part-way leaves the pieces before the cut written and fails its task with
// VDI_IO_ERROR (vhd_tool_wrapper.ml `run_vhd_tool`: vhd-tool exits non-zero).
import { open as openFile } from 'node:fs/promises';
import type http from 'node:http';
import { decodeVhd, encodeVhd, VHD_BLOCK, type VhdBlock } from '@xsmeta/xapi';
import { Failure } from './errors.js';
import type { Pool } from './pool.js';

/** Constants.max_vhd_size (ocaml/xapi-consts/constants.ml): 2040 GiB. */
const MAX_VHD_SIZE = 2040 * 1024 * 1024 * 1024;

/** A block of zeros: what a block is compared with, and the stand-in for block data. */
const ZERO = Buffer.alloc(VHD_BLOCK);

type Finish = (outcome: { result: string } | { error: Failure }) => void;

const ioError = () => new Failure('VDI_IO_ERROR', ['Device I/O errors']);

/** importexport.ml `vdi_of_req`: a known ref, else a uuid (UUID_INVALID when unknown). */
function vdiOf(pool: Pool, url: URL): string | null {
  const v = url.searchParams.get('vdi');
  if (v === null) return null;
  if (pool.db.get('VDI', v)) return v;
  const hit = pool.db.byUuid('VDI', v);
  if (!hit) throw new Failure('UUID_INVALID', ['VDI', v]);
  return hit[0];
}

function imagePath(pool: Pool, vdiRef: string): string {
  const vdi = pool.rec('VDI', vdiRef);
  const sr = pool.rec('SR', vdi.SR);
  return pool.image(sr.uuid as string, vdi.uuid as string);
}

/** `Format.of_req`: the format, or an answer already sent (404 + task failed) when unknown. */
function formatOf(url: URL): 'raw' | 'vhd' | { unknown: string } {
  const f = (url.searchParams.get('format') ?? 'raw').toLowerCase();
  if (f === 'raw' || f === 'vhd') return f;
  return { unknown: url.searchParams.get('format') ?? '' };
}

/** Writes a piece, then waits for the socket to drain or close (whichever comes first). */
export async function write(res: http.ServerResponse, piece: Uint8Array): Promise<void> {
  if (res.write(piece)) return;
  await new Promise<void>((r) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      r();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** GET /export_raw_vdi?vdi=…[&format=raw|vhd]. */
export async function exportRawVdi(
  pool: Pool,
  res: http.ServerResponse,
  url: URL,
  task: string,
  finish: Finish,
): Promise<void> {
  const vdiRef = vdiOf(pool, url);
  if (vdiRef === null) throw new Failure('INTERNAL_ERROR', ['Missing vdi query parameter']);
  const format = formatOf(url);
  if (typeof format !== 'string') {
    finish({ error: new Failure('INTERNAL_ERROR', [`Unknown format ${format.unknown}`]) });
    res.writeHead(404, { connection: 'close' }).end();
    return;
  }
  const vdi = pool.rec('VDI', vdiRef);
  // 200 with keep_alive false and no Content-Length, then vhd-tool writes to the socket.
  res.useChunkedEncodingByDefault = false;
  res.sendDate = false;
  res.writeHead(200, {
    connection: 'close',
    'task-id': task,
    'content-type': format === 'vhd' ? 'application/vhd' : 'application/octet-stream',
    'content-disposition': `attachment; filename="${vdi.uuid as string}.${format}"`,
  });
  const size = Number(vdi.virtual_size);
  if (format === 'vhd' && size > MAX_VHD_SIZE) {
    finish({ error: new Failure('VDI_TOO_LARGE', [vdiRef, String(MAX_VHD_SIZE)]) });
    res.destroy();
    return;
  }
  const cut = pool.faults.cutAfter('/export_raw_vdi');
  let sent = 0;
  const fh = await openFile(imagePath(pool, vdiRef), 'r');
  try {
    const send = async (piece: Uint8Array): Promise<boolean> => {
      const room = cut === null ? piece.length : Math.max(0, cut - sent);
      const part = room < piece.length ? piece.subarray(0, room) : piece;
      if (part.length > 0) await write(res, part);
      sent += part.length;
      return part.length === piece.length && !res.destroyed;
    };
    const blockAt = async (index: number): Promise<Uint8Array> => {
      const buf = new Uint8Array(VHD_BLOCK);
      await fh.read(
        buf,
        0,
        Math.max(0, Math.min(VHD_BLOCK, size - index * VHD_BLOCK)),
        index * VHD_BLOCK,
      );
      return buf;
    };
    let whole = true;
    if (format === 'raw') {
      for (let i = 0; whole && i * VHD_BLOCK < size; i++) {
        const b = await blockAt(i);
        whole = await send(b.subarray(0, Math.min(VHD_BLOCK, size - i * VHD_BLOCK)));
      }
    } else {
      // f.ml `Raw_input.vhd`: a block is carried when it holds a non-zero byte. A first pass
      // finds them (the BAT goes first), the second sends each block read again.
      const blocks: VhdBlock[] = [];
      for (let i = 0; i * VHD_BLOCK < size; i++)
        if (!Buffer.from(await blockAt(i)).equals(ZERO)) blocks.push({ index: i, data: ZERO });
      const { pieces } = encodeVhd(size, blocks);
      let next = 0;
      for (const p of pieces) {
        if (!whole) break;
        whole = await send(p === ZERO ? await blockAt(blocks[next++]!.index) : p);
      }
    }
    if (!whole) {
      finish({ error: ioError() });
      res.destroy();
      return;
    }
    finish({ result: '' });
    res.end();
  } finally {
    await fh.close();
  }
}

/** The request body, stopped after `cut` bytes (the fault knob) by closing the connection. */
async function* body(req: http.IncomingMessage, cut: number | null): AsyncGenerator<Uint8Array> {
  let seen = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    const chunk = new Uint8Array(c.buffer, c.byteOffset, c.byteLength);
    if (cut !== null && seen + chunk.length >= cut) {
      if (cut > seen) yield chunk.subarray(0, cut - seen);
      req.socket.destroy();
      throw new Error(`connection closed after ${cut} bytes (injected)`);
    }
    seen += chunk.length;
    yield chunk;
  }
  if (!req.complete) throw new Error('connection closed early');
}

/** PUT /import_raw_vdi?vdi=…[&format=raw|vhd]. */
export async function importRawVdi(
  pool: Pool,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  task: string,
  finish: Finish,
): Promise<void> {
  const refuse = (f: Failure, status: number) => {
    finish({ error: f });
    req.resume();
    res.writeHead(status, { connection: 'close' }).end();
  };
  const vdiRef = vdiOf(pool, url);
  // import.ml `import`: with neither a VDI nor an SR there is nothing to import into.
  if (vdiRef === null) return refuse(new Failure('VDI_MISSING', []), 400);
  const format = formatOf(url);
  if (typeof format !== 'string')
    return refuse(new Failure('INTERNAL_ERROR', [`Unknown format ${format.unknown}`]), 404);
  if (format !== 'raw' && url.searchParams.has('chunked'))
    return refuse(new Failure('INTERNAL_ERROR', ['Cannot handle chunked VHD']), 404);
  const te = req.headers['transfer-encoding'];
  if (te !== undefined)
    return refuse(new Failure('INTERNAL_ERROR', [`Cannot handle encoding: ${te}`]), 404);
  const vdi = pool.rec('VDI', vdiRef);
  const size = Number(vdi.virtual_size);
  // The 200 and the task id go out first; then vhd-tool reads the body from the socket.
  res.writeHead(200, { 'task-id': task, connection: 'close' });
  res.flushHeaders();
  const cut = pool.faults.cutAfter('/import_raw_vdi');
  const fh = await openFile(imagePath(pool, vdiRef), 'r+');
  try {
    const put = async (offset: number, data: Uint8Array) => {
      if (offset + data.length > size) throw new Error('write past the end of the VDI');
      await fh.write(data, 0, data.length, offset);
    };
    if (format === 'raw') {
      let at = 0;
      for await (const chunk of body(req, cut)) {
        await put(at, chunk);
        at += chunk.length;
      }
    } else {
      for await (const ev of decodeVhd(body(req, cut))) {
        if (ev.kind === 'layout' && ev.layout.size > size + VHD_BLOCK)
          throw new Error('the VHD is larger than the VDI');
        if (ev.kind === 'data') await put(ev.offset, ev.data);
      }
    }
    await fh.datasync();
    finish({ result: vdiRef });
    res.end();
  } catch {
    await fh.datasync().catch(() => {});
    finish({ error: ioError() });
    res.destroy();
  } finally {
    await fh.close();
  }
}
