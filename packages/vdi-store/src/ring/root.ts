/**
 * Choosing the root at open (FORMAT.md "Choosing a root", "Recovery"): both copies read, the
 * newest valid one plus the records committed beyond it, or a root rebuilt by a scan; what was
 * wrong with it (RingStatus); the refusal to format over data; writing both copies.
 */
import type { BlockDevice } from '../device.js';
import { RingError } from '../errors.js';
import { decodeRoot, encodeRoot, type Failure, holdsExtFilesystem, salvageRoot } from './codec.js';
import {
  BLOCK,
  DATA_START,
  dec,
  ENTRY,
  type Entry,
  HEADER,
  MAX_SLOTS,
  overlaps,
  REC_HEADER,
  REC_MAGIC,
  ROOT_MAGIC,
  ROOT_SIZE,
  type Root,
  span,
} from './layout.js';
import { countHeaders, findBeyond, rebuild, scanRecords } from './scan.js';
import type { RingStatus } from './types.js';

/** Adds records found beyond a root: each drops the listed records whose space it reused. */
function merge(root: Root, found: Entry[]): Root {
  let entries = root.entries.slice();
  let nextSeq = root.nextSeq;
  for (const f of found) {
    entries = entries.filter(
      (e) => !overlaps(e.offset, e.offset + span(e), f.offset, f.offset + span(f)),
    );
    entries.push(f);
    nextSeq = Math.max(nextSeq, f.seq + 1);
  }
  while (entries.length > MAX_SLOTS) {
    const oldest = entries.reduce((a, b) => (b.createdAt < a.createdAt ? b : a));
    entries = entries.filter((e) => e !== oldest);
  }
  return { ...root, entries, nextSeq };
}

/** Reads both root copies. */
export async function readRoots(dev: BlockDevice) {
  // The used part of a copy: its header and at most MAX_SLOTS entries (the rest is unused).
  const n = HEADER + MAX_SLOTS * ENTRY;
  const bufs = await Promise.all([dev.read(0, n), dev.read(ROOT_SIZE, n)]);
  const results = [decodeRoot(bufs[0], 0, dev.size), decodeRoot(bufs[1], 1, dev.size)] as const;
  let best: Root | null = null;
  for (const r of results)
    if (r.ok && (!best || r.root.generation > best.generation)) best = r.root;
  return { bufs, results, best };
}

interface Inspection {
  root: Root;
  status: RingStatus;
}

/**
 * The root to use and what is wrong with the one found: the newest valid copy plus every
 * committed record beyond it, or, with both copies unusable, a root rebuilt by a scan.
 * `fullScan` (repair) also scans the whole data area for records beyond a valid root.
 */
export async function inspect(
  dev: BlockDevice,
  opts: {
    readOnly: boolean;
    expect?: { vdiUuid?: string; srUuid?: string };
    fullScan?: boolean;
    maxRecords?: number;
    rootsOnly?: boolean;
  },
): Promise<Inspection> {
  if (dev.size < DATA_START) {
    throw new RingError(
      dev.size >= 8 ? 'RING_NOT_FORMATTED' : 'RING_TRUNCATED',
      `device of ${dev.size} bytes is too small to hold a ring`,
    );
  }
  const limit = dev.size - DATA_START;
  const warnings: string[] = [];
  let { bufs, results, best } = await readRoots(dev);
  const unsupported = results.find((r) => !r.ok && r.code === 'RING_VERSION_UNSUPPORTED');
  if (unsupported && !unsupported.ok) {
    // Never fall back past a copy a newer xsmeta wrote: that would roll its backups back.
    throw new RingError('RING_VERSION_UNSUPPORTED', unsupported.message);
  }
  if (best) {
    let used: Root = best;
    let found = opts.rootsOnly ? [] : await findBeyond(dev, used, limit);
    if (found.length > 0 && opts.readOnly) {
      // A backup may be between flushing its record and committing its root: look once more.
      const again = await readRoots(dev);
      if (again.best && again.best.generation > used.generation) {
        ({ bufs, results } = again);
        used = again.best;
        found = await findBeyond(dev, used, limit);
      }
    }
    results.forEach((r, i) => {
      if (!r.ok)
        warnings.push(
          `root copy ${i} is ${r.code === 'RING_NOT_FORMATTED' ? 'blank or its magic damaged' : `damaged (${r.message})`}: using copy ${1 - i} (generation ${used.generation})`,
        );
    });
    if (results[0].ok && results[1].ok) {
      const [a, b] = [results[0].root.generation, results[1].root.generation];
      if (Math.abs(a - b) !== 1)
        warnings.push(
          `the root copies hold generations ${a} and ${b}, not consecutive: one was rolled back or replayed`,
        );
    }
    let root = used;
    if (found.length > 0) {
      warnings.push(
        `record(s) ${found.map((f) => f.seq).join(', ')} were committed but are missing from the root (a damaged, rolled-back or unwritten root): recovered from their own headers`,
      );
      root = merge(used, found);
    }
    if (opts.fullScan) {
      const extra = (
        await scanRecords(dev, root.dataEnd - DATA_START, limit, root.nonce, root.nextSeq)
      ).map((f) => f.entry);
      if (extra.length > 0) {
        warnings.push(
          `record(s) ${extra.map((f) => f.seq).join(', ')} were found beyond the root by a full scan: recovered`,
        );
        root = merge(
          root,
          extra.sort((a, b) => a.seq - b.seq),
        );
      }
    }
    const truncatedTo = used.deviceSize > dev.size ? dev.size : null;
    if (truncatedTo !== null) {
      const lost = root.entries.filter((e) => e.offset + REC_HEADER + e.length > limit);
      warnings.push(
        `the device has ${dev.size} bytes, fewer than the ${used.deviceSize} the ring was made for: ${lost.length ? `record(s) ${lost.map((e) => e.seq).join(', ')} lie beyond its end; ` : ''}the records inside it stay readable, writes are refused`,
      );
    }
    return {
      root,
      status: {
        ok: warnings.length === 0,
        warnings,
        recovered: [
          ...new Set(root.entries.filter((e) => e.seq >= used.nextSeq).map((e) => e.seq)),
        ],
        rebuilt: false,
        repaired: false,
        truncatedTo,
      },
    };
  }
  const failures = results as readonly Failure[];
  const blank = failures.every((f) => f.code === 'RING_NOT_FORMATTED');
  if (blank && !opts.fullScan) {
    if (holdsExtFilesystem(bufs[0])) {
      // Not blank: formatting it would destroy what it holds (an old ext3 backup, say).
      throw new RingError(
        'RING_FOREIGN',
        'the disk holds an ext2/ext3/ext4 filesystem, not a backup ring',
      );
    }
    // Every ring's first record starts at the data area's first block, and no record ever
    // covers it otherwise: no header there means no record was ever written.
    const first = await dev.read(DATA_START, Math.min(BLOCK, dev.size - DATA_START));
    if (dec.decode(first.subarray(0, 8)) !== REC_MAGIC)
      throw new RingError('RING_NOT_FORMATTED', 'the disk holds no xsmeta backup ring');
  }
  const salvaged = [salvageRoot(bufs[0]), salvageRoot(bufs[1])].filter((x) => x !== null);
  const expect = opts.expect ?? {};
  const id =
    salvaged[0] ??
    (expect.vdiUuid && expect.srUuid
      ? { vdiUuid: expect.vdiUuid, srUuid: expect.srUuid, maxRecords: 25, nonce: null }
      : null);
  const what = blank ? 'both root copies are blank' : failures.map((f) => f.message).join('; ');
  if (!id) {
    throw new RingError(
      blank ? 'RING_ROOT_LOST' : 'RING_CORRUPT',
      `${what}, and the ring's identity is unknown: rebuild the root with \`xsmeta repair\``,
    );
  }
  const notes: string[] = [];
  const root = await rebuild(
    dev,
    {
      ...id,
      maxRecords: opts.maxRecords ?? id.maxRecords,
      // Without a copy to say the ring's retention, keep every intact record (nothing lost;
      // the next backup's retention evicts the oldest again).
      retain: opts.maxRecords ?? (salvaged[0] ? id.maxRecords : MAX_SLOTS),
    },
    salvaged.map((s) => s.nonce),
    notes,
  );
  if (root.entries.length === 0 && opts.fullScan && blank) {
    throw new RingError(
      'RING_NOT_FORMATTED',
      'the disk holds no xsmeta root and no xsmeta record: nothing to repair',
    );
  }
  if (root.entries.length === 0 && !opts.fullScan) {
    throw new RingError(
      blank ? 'RING_ROOT_LOST' : 'RING_CORRUPT',
      `${what}, and no intact record was found by a scan: nothing to recover (re-initialise with -i to start afresh)`,
    );
  }
  warnings.push(
    `${what}: the index was rebuilt by scanning the records (${root.entries.length} found); rebuild the root with \`xsmeta repair\``,
    ...notes,
  );
  return {
    root,
    status: {
      ok: false,
      warnings,
      recovered: root.entries.map((e) => e.seq),
      rebuilt: true,
      repaired: false,
      truncatedTo: null,
    },
  };
}

/** Refuses to format over anything that holds a ring, records or a filesystem. */
export async function refuseToFormat(dev: BlockDevice): Promise<void> {
  const { bufs } = await readRoots(dev);
  const again = 'only an explicit re-initialisation (xsmeta backup -i, confirmed) may destroy them';
  for (const i of [0, 1] as const) {
    if (dec.decode(bufs[i].subarray(0, 8)) === ROOT_MAGIC)
      throw new RingError(
        'RING_NOT_EMPTY',
        `the disk holds an xsmeta ring (root copy ${i}): ${again}`,
      );
  }
  if (holdsExtFilesystem(bufs[0]))
    throw new RingError(
      'RING_FOREIGN',
      'the disk holds an ext2/ext3/ext4 filesystem, not a backup ring',
    );
  const n = await countHeaders(dev);
  if (n > 0) {
    throw new RingError(
      'RING_NOT_EMPTY',
      `the disk's root area is blank but it holds ${n} xsmeta record header(s): rebuild its root with \`xsmeta repair\` (a dry run first), or ${again}`,
    );
  }
}

export function cleanStatus(): RingStatus {
  return {
    ok: true,
    warnings: [],
    recovered: [],
    rebuilt: false,
    repaired: false,
    truncatedTo: null,
  };
}

export function checkIdentity(
  root: Root,
  expect: { vdiUuid?: string; srUuid?: string } = {},
): void {
  if (
    (expect.vdiUuid && expect.vdiUuid !== root.vdiUuid) ||
    (expect.srUuid && expect.srUuid !== root.srUuid)
  ) {
    throw new RingError(
      'RING_IDENTITY_MISMATCH',
      `the ring belongs to VDI ${root.vdiUuid} on SR ${root.srUuid}, not to the expected ${expect.vdiUuid ?? '-'} on ${expect.srUuid ?? '-'}`,
    );
  }
}

/** Writes copy 0 with generation g - 1 and copy 1 with g (g odd), as format does. */
export async function writeBothCopies(dev: BlockDevice, root: Root): Promise<void> {
  const g = root.generation % 2 === 1 ? root.generation : root.generation + 1;
  await dev.write(0, encodeRoot({ ...root, generation: g - 1 }, 0));
  await dev.write(ROOT_SIZE, encodeRoot({ ...root, generation: g }, 1));
  await dev.flush();
}
