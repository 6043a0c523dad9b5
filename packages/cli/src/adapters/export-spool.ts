/**
 * The pool's `export_metadata?all=true` spooled to an unlinked temporary file while
 * `ExportSplitter` indexes it; each VM's export is read back and built only when the backup
 * takes it. Memory holds the index, not the pool's export (about 33 KiB a VM).
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExportAll } from '@xsmeta/core';
import { ExportSplitter, XapiError } from '@xsmeta/xapi';

/**
 * One builder per VM uuid found in `body` (of those in `vmUuids`, when given); the file is closed by `close()` (a backup calls it
 * when its capture ends, however it ends), once the last VM's export was built, at once when
 * the export names none of them, or on a failure while spooling. A builder called after the
 * file was closed throws (its descriptor may name another file by then).
 */
export async function spoolExport(
  body: AsyncIterable<Uint8Array>,
  vmUuids?: readonly string[],
): Promise<ExportAll> {
  const dir = mkdtempSync(join(tmpdir(), 'xsmeta-export-'));
  const fd = openSync(join(dir, 'all.tar'), 'w+', 0o600);
  rmSync(dir, { recursive: true, force: true });
  let closed = false;
  const close = () => {
    if (!closed) closeSync(fd);
    closed = true;
  };
  try {
    const splitter = new ExportSplitter(vmUuids);
    for await (const chunk of body) {
      writeSync(fd, chunk);
      splitter.push(chunk);
    }
    const builders = splitter.finish((offset, length) => {
      if (closed) throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the spooled export is closed');
      const b = Buffer.allocUnsafe(length);
      if (readSync(fd, b, 0, length, offset) !== length)
        throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the spooled export is short');
      return b;
    });
    let left = builders.size;
    if (left === 0) close();
    const out: ExportAll = new Map(
      [...builders].map(([uuid, build]) => [
        uuid,
        () => {
          try {
            return build();
          } finally {
            if (--left === 0) close();
          }
        },
      ]),
    );
    out.close = close;
    return out;
  } catch (e) {
    close();
    throw e;
  }
}
