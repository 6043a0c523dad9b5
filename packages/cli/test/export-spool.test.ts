/**
 * The all=true export spooled to an unlinked file (adapters/export-spool.ts): the file is
 * closed by `close()` even when some VMs' exports were never built (a backup that failed or
 * was aborted midway), and a builder called after that refuses instead of reading a
 * descriptor that may name another file by then.
 */
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { writeOva } from '@xsmeta/xapi';
import { describe, expect, it } from 'vitest';
import { spoolExport } from '../src/adapters/export-spool.js';

const NULL = 'OpaqueRef:NULL';

/** The descriptors of this process open on a spool file. */
function spoolFds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).includes('xsmeta-export-')) n++;
    } catch {
      // closed while listed (the directory's own descriptor)
    }
  }
  return n;
}

async function* chunks(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += 100) yield bytes.subarray(i, i + 100);
}

const body = () =>
  chunks(
    writeOva({
      version: { hostname: 'h', product_version: '8.2.1' },
      objects: ['a', 'b', 'c'].map((n) => ({
        class: 'VM',
        id: `Ref:${n}`,
        snapshot: {
          uuid: `vm-${n}`,
          name_label: `vm ${n}`,
          snapshot_of: NULL,
          VBDs: [],
          VIFs: [],
          other_config: {},
        },
      })),
    }),
  );

describe.skipIf(!existsSync('/proc/self/fd'))('the spooled all=true export', () => {
  it('is closed by close() with some exports never built, and builds nothing after', async () => {
    const before = spoolFds();
    const spool = await spoolExport(body(), ['vm-a', 'vm-b', 'vm-c']);
    expect([...spool.keys()]).toEqual(['vm-a', 'vm-b', 'vm-c']);
    expect(spoolFds()).toBe(before + 1);
    expect(spool.get('vm-a')!().length).toBeGreaterThan(0);
    // The backup stops here: vm-b and vm-c are never built.
    expect(spool.close).toBeTypeOf('function');
    spool.close?.();
    expect(spoolFds()).toBe(before);
    spool.close?.();
    expect(() => spool.get('vm-b')!()).toThrow(expect.objectContaining({ code: 'XAPI_PROTOCOL' }));
  });

  it('still closes itself once every export was built', async () => {
    const before = spoolFds();
    const spool = await spoolExport(body(), ['vm-a', 'vm-b']);
    for (const build of spool.values()) build();
    expect(spoolFds()).toBe(before);
  });
});
