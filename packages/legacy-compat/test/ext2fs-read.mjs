// Reads files of an image through the `ext2fs` package (libext2fs in WebAssembly) on a read-only
// file-disk, in a process of its own (the module installs process-wide exception handlers and
// can abort with a WebAssembly RuntimeError). Used by ext2fs.test.ts, which keeps the evidence
// behind DECISION.md checked. Usage: node ext2fs-read.mjs <image> <check-short-reads 0|1> <path>...
// Prints one JSON line: { mountError?, files: { path: sha256 | "error ..." }, overlayWrites }.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { mount, umount } from 'ext2fs';
import { FileDisk } from 'file-disk';

/** file-disk reports every read as complete; this one refuses a short read. */
class CheckedDisk extends FileDisk {
  async _read(buffer, bufferOffset, length, fileOffset) {
    const r = await super._read(buffer, bufferOffset, length, fileOffset);
    if (r.bytesRead !== length) throw new Error(`short read at ${fileOffset}`);
    return r;
  }
}

const [img, checked, ...paths] = process.argv.slice(2);
const handle = await open(img, 'r');
const disk =
  checked === '1' ? new CheckedDisk(handle, true, true) : new FileDisk(handle, true, true);
const out = { files: {}, overlayWrites: 0 };
let fs;
try {
  fs = await mount(disk, 0);
  for (const p of paths) {
    try {
      const fh = await fs.promises.open(p, 'r');
      const { size } = await fh.stat();
      const buf = Buffer.alloc(size);
      if (size > 0) await fh.read(buf, 0, size, 0);
      await fh.close();
      out.files[p] = createHash('sha256').update(buf).digest('hex');
    } catch (e) {
      out.files[p] = `error ${e.code ?? e.name}`;
    }
  }
} catch (e) {
  out.mountError = `${e.code ?? e.name}: ${e.message}`;
}
for (const c of disk.knownChunks)
  if (c.constructor.name === 'BufferDiskChunk') out.overlayWrites += c.end - c.start + 1;
process.stdout.write(`${JSON.stringify(out)}\n`);
if (fs) await umount(fs);
await handle.close();
