/**
 * The Ring class: the public face of the ring, ordering the steps that live in ./ring/
 * (layout and codecs, choosing the root, scans, append, read, verify, signatures).
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { BlockDevice } from './device.js';
import { RingError } from './errors.js';
import { place, retained, writeRecord } from './ring/append.js';
import { encodeRoot } from './ring/codec.js';
import {
  align,
  BLOCK,
  DATA_START,
  type Entry,
  HEADER,
  LABEL_MAX,
  MAX_SLOTS,
  REC_HEADER,
  RING_FORMAT_VERSION,
  ROOT_SIZE,
  type Root,
  SIG_TRAILER,
  span,
  UUID,
} from './ring/layout.js';
import { collect, type RingView, readRecord } from './ring/read.js';
import {
  checkIdentity,
  cleanStatus,
  inspect,
  refuseToFormat,
  writeBothCopies,
} from './ring/root.js';
import { checkKeys, type RingKeys } from './ring/signing.js';
import {
  info,
  type RecordCheck,
  type RecordInfo,
  type RepairReport,
  type RingStatus,
  type RingUsage,
  type VerifyReport,
} from './ring/types.js';
import { verifyRecords } from './ring/verify.js';

/**
 * The bounded ring of backup records on one disk. Two root copies at the start hold the index
 * (generation-numbered, checksummed); records follow, each with a header whose checksum binds its
 * sequence number, its offset and the ring's random nonce. See FORMAT.md.
 */
export class Ring {
  private closed = false;
  /** What the record readers see of this ring: its current root, its device, its keys. */
  private readonly view: RingView;

  private constructor(
    private readonly dev: BlockDevice,
    private root: Root,
    private readonly readOnly: boolean,
    private readonly health: RingStatus,
    private readonly recordCheck: RecordCheck | undefined,
    private readonly keys: RingKeys,
  ) {
    const ring = this;
    this.view = {
      dev,
      get root() {
        return ring.root;
      },
      rebuilt: health.rebuilt,
      keys,
    };
  }

  get vdiUuid(): string {
    return this.root.vdiUuid;
  }
  get srUuid(): string {
    return this.root.srUuid;
  }
  get maxRecords(): number {
    return this.root.maxRecords;
  }
  readonly formatVersion = RING_FORMAT_VERSION;

  /** What opening found about the root (damage, recovery, truncation); see RingStatus. */
  get status(): RingStatus {
    return { ...this.health, warnings: this.health.warnings.slice() };
  }

  /**
   * Writes an empty ring (both root copies). Refuses (`RING_NOT_EMPTY`, `RING_FOREIGN`) a disk
   * that holds a ring root, any record header or a filesystem, unless `intent` is
   * `'reinitialise'`: the caller's explicit, confirmed decision to destroy what it holds.
   */
  static async format(
    dev: BlockDevice,
    opts: {
      vdiUuid: string;
      srUuid: string;
      maxRecords?: number;
      intent?: 'reinitialise';
      signingKey?: KeyObject;
    },
  ): Promise<Ring> {
    if (dev.readOnly) throw new RingError('RING_READ_ONLY', 'cannot format a read-only device');
    const maxRecords = opts.maxRecords ?? 25;
    if (!Number.isInteger(maxRecords) || maxRecords < 1 || maxRecords > MAX_SLOTS) {
      throw new RingError('RING_INVALID_ARGUMENT', `maxRecords must be 1..${MAX_SLOTS}`);
    }
    for (const u of [opts.vdiUuid, opts.srUuid]) {
      if (!UUID.test(u))
        throw new RingError('RING_INVALID_ARGUMENT', `not a lower-case uuid: ${u}`);
    }
    if (dev.size < DATA_START + 16 * BLOCK) {
      throw new RingError(
        'RING_INVALID_ARGUMENT',
        `device too small for a ring: ${dev.size} bytes`,
      );
    }
    if (opts.intent !== 'reinitialise') await refuseToFormat(dev);
    const root: Root = {
      generation: 1,
      nonce: new Uint8Array(randomBytes(16)),
      vdiUuid: opts.vdiUuid,
      srUuid: opts.srUuid,
      deviceSize: dev.size,
      dataEnd: dev.size - (dev.size % BLOCK),
      maxRecords,
      nextSeq: 1,
      entries: [],
    };
    // Invalidate both copies first so that a crash mid-format cannot leave an old ring visible.
    const zero = new Uint8Array(HEADER);
    await dev.write(0, zero);
    await dev.write(ROOT_SIZE, zero);
    await dev.flush();
    await writeBothCopies(dev, root);
    return new Ring(dev, root, false, cleanStatus(), undefined, checkKeys(opts));
  }

  /**
   * Opens a ring: the newest root copy that verifies, plus every committed record found beyond
   * it from its own header (crash recovery, and recovery from a damaged or rolled-back copy);
   * with both copies unusable, an index rebuilt by scanning the records (writes then refused
   * with `RING_ROOT_LOST` until `Ring.repair`). A writable open writes a recovered root back.
   * `status` says what was found. `check` is used by verify() on each record's bytes.
   */
  static async open(
    dev: BlockDevice,
    opts: {
      readOnly?: boolean;
      expect?: { vdiUuid?: string; srUuid?: string };
      check?: RecordCheck;
      /**
       * Read-only opens: trust the newest valid root copy and do not look for records committed
       * beyond it. For a device where a read far into the disk costs the whole stream up to
       * there (the remote device): `list` then reads the roots only.
       */
      rootsOnly?: boolean;
    } & RingKeys = {},
  ): Promise<Ring> {
    const readOnly = opts.readOnly ?? dev.readOnly;
    if (opts.rootsOnly && !readOnly)
      throw new RingError('RING_INVALID_ARGUMENT', 'rootsOnly is for read-only opens');
    const { root, status } = await inspect(dev, {
      readOnly,
      rootsOnly: opts.rootsOnly ?? false,
      ...(opts.expect ? { expect: opts.expect } : {}),
    });
    checkIdentity(root, opts.expect);
    const ring = new Ring(dev, root, readOnly, status, opts.check, checkKeys(opts));
    if (!readOnly && !status.ok && !status.rebuilt && status.truncatedTo === null) {
      // Heal: the other copy gets the recovered root (the damaged or stale copy is overwritten).
      await ring.commit(root);
      status.repaired = true;
      status.warnings.push('the recovered root was written back');
    }
    return ring;
  }

  /**
   * Rebuilds the root from the records (`xsmeta repair`): the valid root (if any) plus every
   * committed record beyond it found by a full scan, or, with both copies unusable, the records
   * alone (identity from `expect` when no copy gives it). Writes both copies only with `apply`;
   * otherwise a dry run that reports what it would do.
   */
  static async repair(
    dev: BlockDevice,
    opts: {
      apply: boolean;
      expect?: { vdiUuid?: string; srUuid?: string };
      maxRecords?: number;
    },
  ): Promise<RepairReport> {
    const { root, status } = await inspect(dev, {
      readOnly: true,
      fullScan: true,
      ...(opts.expect ? { expect: opts.expect } : {}),
      ...(opts.maxRecords ? { maxRecords: opts.maxRecords } : {}),
    });
    checkIdentity(root, opts.expect);
    if (status.truncatedTo !== null) {
      throw new RingError(
        'RING_TRUNCATED',
        `the device is shorter than the ring (${status.warnings.at(-1)}): copy the readable backups off before re-initialising`,
      );
    }
    const notes = status.warnings.filter(
      (w) => !w.endsWith('rebuild the root with `xsmeta repair`'),
    );
    let written = false;
    if (opts.apply && !status.ok) {
      if (dev.readOnly) throw new RingError('RING_READ_ONLY', 'cannot repair a read-only device');
      await writeBothCopies(dev, { ...root, generation: root.generation + 1 });
      written = true;
    }
    return {
      records: root.entries.map(info),
      ignored: notes.filter((n) => n.includes('left out')),
      warnings: notes.filter((n) => !n.includes('left out')),
      clean: status.ok,
      written,
    };
  }

  private check(): void {
    if (this.closed) throw new RingError('RING_INVALID_ARGUMENT', 'the ring is closed');
  }

  /** The records, newest first, from the index read at open. */
  list(): RecordInfo[] {
    this.check();
    return this.root.entries.slice().reverse().map(info);
  }

  usage(): RingUsage {
    const capacity = this.root.dataEnd - DATA_START;
    const used = this.root.entries.reduce((n, e) => n + span(e), 0);
    return {
      capacity,
      used,
      free: capacity - used,
      maxRecords: this.root.maxRecords,
      records: this.root.entries.map((e) => ({ seq: e.seq, offset: e.offset, size: span(e) })),
    };
  }

  private async commit(root: Root): Promise<void> {
    const generation = this.root.generation + 1;
    const next = { ...root, generation };
    const index = (generation % 2) as 0 | 1;
    await this.dev.write(index * ROOT_SIZE, encodeRoot(next, index));
    await this.dev.flush();
    this.root = next;
  }

  /**
   * Appends one record atomically and evicts the oldest (by `createdAt`) beyond `keep`
   * (default maxRecords).
   * RING_FULL, with the disk unchanged, when it cannot fit even with only the newest keep-1 kept.
   */
  async append(input: {
    label: Uint8Array;
    data: Uint8Array;
    createdAt?: number;
    keep?: number;
  }): Promise<RecordInfo> {
    this.check();
    if (this.readOnly) throw new RingError('RING_READ_ONLY', 'the ring is open read-only');
    if (this.health.rebuilt) {
      throw new RingError(
        'RING_ROOT_LOST',
        'both root copies of the backup disk are unusable and its records were found by a scan: rebuild the root with `xsmeta repair` before the next backup (re-initialising with -i destroys them)',
      );
    }
    if (this.health.truncatedTo !== null) {
      throw new RingError(
        'RING_TRUNCATED',
        `the device is shorter than the ring was made for (${this.health.truncatedTo} < ${this.root.deviceSize} bytes): no backup is written to it`,
      );
    }
    const keep = input.keep ?? this.root.maxRecords;
    if (!Number.isInteger(keep) || keep < 1 || keep > MAX_SLOTS) {
      throw new RingError('RING_INVALID_ARGUMENT', `keep must be 1..${MAX_SLOTS}, not ${keep}`);
    }
    if (input.label.length > LABEL_MAX) {
      throw new RingError(
        'RING_INVALID_ARGUMENT',
        `label of ${input.label.length} bytes exceeds ${LABEL_MAX}`,
      );
    }
    const createdAt = Math.floor(input.createdAt ?? Date.now());
    const entries = this.root.entries;
    const kept = retained(entries, keep);
    const signer = this.keys.signingKey;
    const need = align(
      REC_HEADER + input.data.length + input.label.length + (signer ? SIG_TRAILER : 0),
    );
    // Prefer space that no listed record uses: then a crash at any point shows the old set.
    let offset = place(this.root, need, entries);
    if (offset === null) {
      offset = place(this.root, need, kept);
      if (offset === null) {
        const capacity = this.root.dataEnd - DATA_START;
        const room = capacity - kept.reduce((n, e) => n + span(e), 0);
        throw new RingError(
          'RING_FULL',
          `the backup needs ${need} bytes but the disk has room for ${room} bytes after keeping the newest ${keep - 1} backup(s) (capacity ${capacity} bytes)`,
        );
      }
      // The new record must reuse space of records that this append evicts anyway: drop them
      // from the index first, so the index never points at overwritten bytes.
      await this.commit({ ...this.root, entries: kept });
    }
    const entry: Entry = {
      seq: this.root.nextSeq,
      offset,
      length: input.data.length,
      createdAt,
      crc: crc32(input.data),
      label: input.label.slice(),
      inline: true,
      signed: signer !== undefined,
    };
    await writeRecord(this.dev, this.root.nonce, entry, input.data, signer);
    await this.commit({ ...this.root, nextSeq: entry.seq + 1, entries: [...kept, entry] });
    return info(entry);
  }

  private entry(seq: number): Entry {
    const e = this.root.entries.find((x) => x.seq === seq);
    if (!e) throw new RingError('RING_NOT_FOUND', `no backup record with seq ${seq}`);
    return e;
  }

  /**
   * Streams a record's payload; the last chunk is released only once the checksum matched.
   * Reads under the root read at open; a record that a concurrent backup evicted meanwhile
   * fails with RING_EVICTED rather than as damage.
   */
  async *read(seq: number): AsyncIterable<Uint8Array> {
    this.check();
    yield* readRecord(this.view, this.entry(seq));
  }

  async readAll(seq: number): Promise<Uint8Array> {
    return collect(this.read(seq));
  }

  /**
   * Checks the root (see status) and every record, newest first; each damaged one is named by
   * seq. With a record check (here or given at open), each record's bytes must also pass it.
   */
  async verify(
    onProgress?: (done: number, total: number) => void,
    check: RecordCheck | undefined = this.recordCheck,
  ): Promise<VerifyReport> {
    this.check();
    const records = await verifyRecords(this.view, onProgress, check);
    const root = this.status;
    return { ok: root.ok && records.every((r) => r.ok), root, records };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.dev.close();
  }
}
