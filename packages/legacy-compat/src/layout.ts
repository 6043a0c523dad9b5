import { parseBackupDate } from '@xsmeta/core';
import { openFileDevice, RingError } from '@xsmeta/vdi-store';
import { LegacyError } from './errors.js';
import {
  type ExtLimits,
  ExtReader,
  type Inode,
  type ReadOnlyDevice,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
} from './ext.js';

/**
 * The layout the old xe-backup-metadata wrote (xen-api's scripts/xe-backup-metadata), and nothing else:
 * `/.ctxs-metadata-backup` (content `1`), `/<pool-uuid>.db[.N]`,
 * `/metadata/<YYYY-MM-DD-HH-MM-SS>/{SRMETA.xml, all/<uuid>.vmmeta, by-sr/<sr>/<uuid>.vmmeta}`.
 * A by-sr entry counts only when it is a symlink whose target is exactly
 * `../../all/<same-uuid>.vmmeta`; no other symlink is ever followed.
 */
export interface LegacyBackup {
  date: string;
  vms: { uuid: string; read(): Promise<Uint8Array> }[];
  /**
   * Every export of `vms`, in the order they lie on the disk, read in batches (64 files, or
   * once a batch holds 4 MiB) whose blocks are read in a few large reads, the next batch read
   * while this one is handed out. A read that fails ends it with that error.
   */
  exports(): AsyncIterable<{ uuid: string; data: Uint8Array }>;
  /** SR uuid -> uuids of the VMs with a disk on it. */
  bySr: Map<string, string[]>;
  srmeta(): Promise<Uint8Array | null>;
}

export interface LegacyDisk {
  /** Pool database dumps, newest first (`/<pool-uuid>.db`, `.db.1`, …). */
  poolDbs: PoolDb[];
  /**
   * The dump the old script made in the same run as the backup of `date`: it rotated the dumps
   * (`logrotate`) and wrote a new one at each backup, so the Nth newest dump goes with the Nth
   * newest date. Paired only when that order is unbroken (one pool, generations 0, 1, 2, …);
   * otherwise null, with a warning.
   */
  poolDbFor(date: string): PoolDb | null;
  /** The dates of the backups, newest first: one read of `/metadata`, no backup opened. */
  dates: string[];
  /**
   * Reads one backup's folders (`all/`, `by-sr/`, the links) when asked, not before; files
   * are read only through `read()`. `LEGACY_NO_BACKUP` for a date not in `dates`.
   */
  backup(date: string): Promise<LegacyBackup>;
  /** Entries that do not fit the layout: reported, never read (grows as backups are read). */
  skipped: { path: string; reason: string }[];
  warnings: string[];
}

export type LegacyLimits = ExtLimits;

export interface PoolDb {
  name: string;
  poolUuid: string;
  /** 0 for `.db`, N for `.db.N`. */
  generation: number;
  read(): Promise<Uint8Array>;
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const VMMETA = new RegExp(`^(${UUID})\\.vmmeta$`);
const SR_DIR = new RegExp(`^${UUID}$`);
const POOL_DB = new RegExp(`^(${UUID})\\.db(?:\\.([1-9]\\d{0,2}))?$`);
/**
 * How far ahead of the clock a backup folder's date may be and still be listed (a host whose
 * clock ran a little fast); the conversion leaves every date after now (chooseConvertDates).
 */
const FUTURE_SLACK_MS = 86_400_000;

/** A backup date (core's one rule, parseBackupDate), not more than a day in the future. */
function validDate(name: string, now: number): boolean {
  const t = parseBackupDate(name);
  return t !== null && t.getTime() <= now + FUTURE_SLACK_MS;
}

/**
 * Opens an image file or a block device (a plugged VBD's `/dev/xvdX`, whose size `stat` does
 * not give) read-only, through vdi-store's device: the bytes are never changed.
 */
export async function openImage(
  path: string,
): Promise<ReadOnlyDevice & { close(): Promise<void> }> {
  const dev = await openFileDevice(path, { readOnly: true });
  return {
    size: dev.size,
    async read(offset, length) {
      try {
        return await dev.read(offset, length);
      } catch (e) {
        if (e instanceof RingError && e.code === 'RING_TRUNCATED')
          throw new LegacyError('LEGACY_CORRUPT', `${e.message} (truncated image?)`);
        throw e;
      }
    },
    close: () => dev.close(),
  };
}

/** Reads a legacy backup disk's layout; files are read only when asked. */
export async function openLegacyDisk(
  dev: ReadOnlyDevice,
  limits: Partial<LegacyLimits> = {},
  now = Date.now(),
): Promise<LegacyDisk> {
  const fs = await ExtReader.open(dev, limits);
  const root = await fs.root();
  const rootEntries = await fs.readdir(root);
  const skipped: LegacyDisk['skipped'] = [];
  const marker = rootEntries.find((e) => e.name === '.ctxs-metadata-backup');
  if (!marker)
    throw new LegacyError(
      'LEGACY_NO_MARKER',
      'no /.ctxs-metadata-backup: this is not a legacy metadata backup disk',
    );
  // Only the marker's existence counts, as upstream's xe-restore-metadata tests it (`-e`):
  // xe-backup-metadata appends its version (`echo 1 >>`) whenever conf/<vdi-uuid> is
  // missing (a copied or re-created VDI), so a marker may hold `1\n1\n` or more
  // (scripts/xe-backup-metadata, scripts/xe-restore-metadata of xen-api).

  const regular = async (ino: number, path: string): Promise<Inode | null> => {
    const i = await fs.inode(ino);
    if (ExtReader.type(i) !== S_IFREG) {
      skipped.push({ path, reason: 'not a regular file' });
      return null;
    }
    return i;
  };

  const dbs: { name: string; pool: string; gen: number; ino: Inode }[] = [];
  for (const e of rootEntries) {
    if (e.name === null) {
      skipped.push({
        path: `/${Buffer.from(e.raw).toString('hex')} (hex)`,
        reason: 'the name is not UTF-8',
      });
      continue;
    }
    const m = POOL_DB.exec(e.name);
    if (!m) continue;
    const i = await regular(e.ino, `/${e.name}`);
    if (i) dbs.push({ name: e.name, pool: m[1]!, gen: m[2] ? Number(m[2]) : 0, ino: i });
  }
  dbs.sort((a, b) => a.gen - b.gen || (a.pool < b.pool ? -1 : 1));
  const poolDbs: PoolDb[] = dbs.map((d) => ({
    name: d.name,
    poolUuid: d.pool,
    generation: d.gen,
    read: () => fs.readFile(d.ino),
  }));

  const dirs = new Map<string, Inode>();
  const metaEntry = rootEntries.find((e) => e.name === 'metadata');
  if (metaEntry) {
    const meta = await fs.inode(metaEntry.ino);
    if (ExtReader.type(meta) !== S_IFDIR)
      skipped.push({ path: '/metadata', reason: 'not a directory' });
    else {
      for (const d of await fs.readdir(meta)) {
        if (d.name === '.' || d.name === '..') continue;
        const path = `/metadata/${d.name ?? `${Buffer.from(d.raw).toString('hex')} (hex)`}`;
        if (d.name === null || !validDate(d.name, now)) {
          skipped.push({
            path,
            reason: 'not a backup date (YYYY-MM-DD-HH-MM-SS, not in the future)',
          });
          continue;
        }
        const dir = await fs.inode(d.ino);
        if (ExtReader.type(dir) !== S_IFDIR) {
          skipped.push({ path, reason: 'not a directory' });
          continue;
        }
        dirs.set(d.name, dir);
      }
    }
  }
  const dates = [...dirs.keys()].sort().reverse();
  const pools = new Set(poolDbs.map((d) => d.poolUuid));
  const unbroken = pools.size === 1 && poolDbs.every((d, i) => d.generation === i);
  if (poolDbs.length > 0 && !unbroken)
    fs.warnings.push(
      pools.size > 1
        ? `pool database dumps of ${pools.size} pools: none is paired with a backup`
        : 'the pool database dumps skip a generation (a dump failed?): none is paired with a backup',
    );
  const read = new Map<string, Promise<LegacyBackup>>();
  return {
    poolDbs,
    poolDbFor: (date) => {
      const i = dates.indexOf(date);
      return unbroken && i >= 0 ? (poolDbs[i] ?? null) : null;
    },
    dates,
    backup(date) {
      const dir = dirs.get(date);
      if (!dir)
        return Promise.reject(
          new LegacyError(
            'LEGACY_NO_BACKUP',
            `no legacy backup dated ${date}; available: ${dates.join(', ') || 'none'}`,
          ),
        );
      let b = read.get(date);
      if (!b) {
        b = readBackup(fs, date, dir, `/metadata/${date}`, skipped);
        read.set(date, b);
      }
      return b;
    },
    skipped,
    warnings: fs.warnings,
  };
}

async function readBackup(
  fs: ExtReader,
  date: string,
  dir: Inode,
  path: string,
  skipped: LegacyDisk['skipped'],
): Promise<LegacyBackup> {
  const entries = await fs.readdir(dir);
  const byName = new Map(entries.filter((e) => e.name !== null).map((e) => [e.name!, e.ino]));
  const files: { uuid: string; inode: Inode }[] = [];
  const allIno = byName.get('all');
  const known = new Set<string>();
  if (allIno !== undefined) {
    const all = await fs.inode(allIno);
    if (ExtReader.type(all) === S_IFDIR) {
      for (const e of await fs.readdir(all)) {
        if (e.name === '.' || e.name === '..') continue;
        const m = e.name === null ? null : VMMETA.exec(e.name);
        const p = `${path}/all/${e.name ?? '(not UTF-8)'}`;
        if (!m) {
          skipped.push({ path: p, reason: 'not <uuid>.vmmeta' });
          continue;
        }
        if (known.has(m[1]!)) {
          // A directory written by the kernel never holds a name twice; a forged one may.
          skipped.push({ path: p, reason: 'a second entry of the same name' });
          continue;
        }
        const i = await fs.inode(e.ino);
        if (ExtReader.type(i) !== S_IFREG) {
          skipped.push({ path: p, reason: 'not a regular file' });
          continue;
        }
        known.add(m[1]!);
        files.push({ uuid: m[1]!, inode: i });
      }
    }
  }
  const bySr = new Map<string, string[]>();
  const bySrIno = byName.get('by-sr');
  if (bySrIno !== undefined) {
    const dirI = await fs.inode(bySrIno);
    if (ExtReader.type(dirI) === S_IFDIR) {
      for (const s of await fs.readdir(dirI)) {
        if (s.name === '.' || s.name === '..') continue;
        const sp = `${path}/by-sr/${s.name ?? '(not UTF-8)'}`;
        if (s.name === null || !SR_DIR.test(s.name)) {
          skipped.push({ path: sp, reason: 'not an SR uuid' });
          continue;
        }
        const si = await fs.inode(s.ino);
        if (ExtReader.type(si) !== S_IFDIR) {
          skipped.push({ path: sp, reason: 'not a directory' });
          continue;
        }
        const list: string[] = [];
        for (const v of await fs.readdir(si)) {
          if (v.name === '.' || v.name === '..') continue;
          const vp = `${sp}/${v.name ?? '(not UTF-8)'}`;
          const m = v.name === null ? null : VMMETA.exec(v.name);
          const li = m ? await fs.inode(v.ino) : null;
          if (!m || !li || ExtReader.type(li) !== S_IFLNK) {
            skipped.push({ path: vp, reason: 'not a symlink named <uuid>.vmmeta' });
            continue;
          }
          let target: string;
          try {
            target = await fs.readlink(li);
          } catch (e) {
            // One bad link (not UTF-8, too long, blocks off the disk) is that link's problem.
            if (!(e instanceof LegacyError) || e.code !== 'LEGACY_CORRUPT') throw e;
            skipped.push({ path: vp, reason: `the link cannot be read: ${e.message}` });
            continue;
          }
          if (target !== `../../all/${m[1]}.vmmeta` || !known.has(m[1]!)) {
            skipped.push({
              path: vp,
              reason: `the link points at ${JSON.stringify(target.slice(0, 80))}, not ../../all/${m[1]}.vmmeta`,
            });
            continue;
          }
          list.push(m[1]!);
        }
        bySr.set(s.name, list);
      }
    }
  }
  const srmetaIno = byName.get('SRMETA.xml');
  return {
    date,
    vms: files.map((f) => ({ uuid: f.uuid, read: () => fs.readFile(f.inode) })),
    exports: () => batchedExports(fs, files),
    bySr,
    srmeta: async () => {
      if (srmetaIno === undefined) return null;
      const i = await fs.inode(srmetaIno);
      return ExtReader.type(i) === S_IFREG ? fs.readFile(i) : null;
    },
  };
}

/** What one batch of `exports()` holds at most (a single larger file makes its own batch). */
const BATCH_FILES = 64;
const BATCH_BYTES = 4 * 1024 * 1024;

async function* batchedExports(
  fs: ExtReader,
  files: readonly { uuid: string; inode: Inode }[],
): AsyncIterable<{ uuid: string; data: Uint8Array }> {
  const batches: { uuid: string; inode: Inode }[][] = [];
  let bytes = 0;
  // In disk order (by first data block, known without a read): the old scripts wrote the
  // files one after the other, so a batch of neighbours is a few large reads.
  const inDiskOrder = [...files].sort((a, b) => a.inode.blocks[0]! - b.inode.blocks[0]!);
  for (const f of inDiskOrder) {
    const last = batches.at(-1);
    if (!last || last.length >= BATCH_FILES || bytes >= BATCH_BYTES) {
      batches.push([f]);
      bytes = f.inode.size;
    } else {
      last.push(f);
      bytes += f.inode.size;
    }
  }
  const start = (b: { inode: Inode }[]) => {
    const p = fs.readFiles(b.map((f) => f.inode));
    // Awaited below; one left behind (the consumer stopped) must not go unhandled.
    p.catch(() => {});
    return p;
  };
  let pending = batches[0] ? start(batches[0]) : null;
  for (let k = 0; k < batches.length; k++) {
    const data = await pending!;
    pending = batches[k + 1] ? start(batches[k + 1]!) : null;
    const batch = batches[k]!;
    for (let j = 0; j < batch.length; j++) yield { uuid: batch[j]!.uuid, data: data[j]! };
  }
}
