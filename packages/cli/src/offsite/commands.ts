// Off-site copies: `xsmeta export`, `xsmeta import`, `xsmeta copy` and `restore --from FILE`.
// A copy is one ring record in a self-describing, checksummed file (copy-file.ts).
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AppError,
  type BackupContent,
  backupVdiOf,
  type DiskPort,
  decodeLabel,
  loadBackup,
  type PoolPort,
  type RingPort,
  resolveSr,
  restoreSummaryLine,
  withRing,
  withWritableRing,
} from '@xsmeta/core';
import { MemoryDevice, Ring } from '@xsmeta/vdi-store';
import { backupVdiUuid } from '@xsmeta/xapi';
import { archive } from '../adapters/archive.js';
import { disk } from '../adapters/disk.js';
import { type Settings, UsageError } from '../config.js';
import type { Io } from '../output.js';
import { ABORTED, confirm } from '../process/confirm.js';
import { lockSr } from '../process/lock.js';
import { withBackupRing, withPool } from '../root.js';
import { restoreOn } from '../services.js';
import { checkRecipient, decryptWith, encryptTo } from './age.js';
import {
  type CopyHeader,
  checkRecord,
  decodeCopy,
  encodeCopy,
  entryDigest,
  readCopyHeader,
} from './copy-file.js';

/** What a declared command hands over: its parsed options (commander's camelCase names). */
type Values = Record<string, string | number | boolean | undefined>;

function seqOf(v: Values[string]): number {
  const n = Number(v);
  if (v === undefined || typeof v === 'boolean' || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError('--seq N is needed: a backup number as `xsmeta list` shows it');
  return n;
}

/** One record of the ring as a copy file's bytes. */
async function copyOf(ring: RingPort, seq: number, recipient?: string): Promise<Uint8Array> {
  const rec = ring.list().find((r) => r.seq === seq);
  if (!rec) throw new AppError('BACKUP_NOT_FOUND', `no backup with seq ${seq}`);
  const l = decodeLabel(rec.label);
  const data = await ring.readAll(seq);
  return encodeCopy(
    {
      poolUuid: l?.poolUuid ?? '',
      srUuid: l?.srUuid ?? '',
      date: l?.date ?? '',
      createdAt: l?.createdAt || rec.createdAt,
      seq,
    },
    rec.label,
    data,
    recipient ? await encryptTo(recipient, data) : undefined,
  );
}

/** A copy file read and checked; an encrypted record decrypted with the identity file. */
async function openCopy(path: string, identity: string | undefined) {
  const c = decodeCopy(readFileSync(path));
  if (c.header.encryption) {
    const id = identity ?? process.env.XSMETA_AGE_IDENTITY;
    if (!id)
      throw new UsageError(
        `${path} is encrypted: give the age identity file with --identity FILE (or XSMETA_AGE_IDENTITY)`,
      );
    c.record = await decryptWith(id, c.record);
    checkRecord(c.header, c.record);
  }
  return c;
}

export async function cmdExport(values: Values, s: Settings, io: Io): Promise<number> {
  const seq = seqOf(values.seq);
  const recipient = values.encryptTo as string | undefined;
  if (recipient) checkRecipient(recipient);
  const out = (values.out as string | undefined) ?? '-';
  if (out === '-' && process.stdout.isTTY)
    throw new UsageError('refusing to write a binary copy to a terminal: give --out FILE');
  const bytes = await withBackupRing(s, values.sr as string | undefined, (ring) =>
    copyOf(ring, seq, recipient),
  );
  if (out === '-') {
    await new Promise<void>((resolve, reject) =>
      process.stdout.write(bytes, (e) => (e ? reject(e) : resolve())),
    );
  } else {
    writeAtomic(out, bytes);
    io.err(`xsmeta: backup ${seq} written to ${out} (${bytes.length} bytes)`);
  }
  return 0;
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.partial`;
  writeFileSync(tmp, bytes, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Runs fn on the SR's ring opened for writing (core's rule), under the SR's lock. */
function withWritableRingLocked<T>(
  argv: { srUuid: string | undefined; create: boolean },
  s: Settings,
  fn: (ring: RingPort) => Promise<T>,
): Promise<T> {
  return withPool(
    s,
    async (pool) => {
      const srUuid = await resolveSr(pool, argv.srUuid);
      const unlock = await lockSr(s.stateDir, srUuid, false);
      try {
        return await withWritableRing({ pool, disk }, { srUuid, create: argv.create }, fn);
      } finally {
        unlock();
      }
    },
    argv.srUuid,
  );
}

export async function cmdImport(
  file: string,
  values: Values,
  s: Settings,
  io: Io,
): Promise<number> {
  const { header, label, record } = await openCopy(file, values.identity as string | undefined);
  const added = await withWritableRingLocked(
    { srUuid: values.sr as string | undefined, create: values.create === true },
    s,
    async (ring) => {
      const same = ring
        .list()
        .find(
          (r) =>
            entryDigest(r.label, decodeLabel(r.label)?.createdAt || r.createdAt, r.size) ===
            header.entry,
        );
      if (same) return null;
      return ring.append({ label, data: record, createdAt: header.createdAt });
    },
  );
  io.err(
    added
      ? `xsmeta: backup ${header.date} imported as seq ${added.seq}`
      : `xsmeta: backup ${header.date} is already in the ring: nothing imported`,
  );
  return 0;
}

/** The copies of this SR in a folder, by file name, from their headers. */
function copiesIn(dir: string, srUuid: string): { file: string; header: CopyHeader }[] {
  const out: { file: string; header: CopyHeader }[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.xsmcopy')) continue;
    try {
      const { header } = readCopyHeader(readFileSync(join(dir, f)).subarray(0, 70 * 1024));
      if (header.srUuid === srUuid) out.push({ file: f, header });
    } catch {
      // not ours, or damaged: left alone
    }
  }
  return out;
}

export async function cmdCopy(values: Values, s: Settings, io: Io): Promise<number> {
  const recipient = values.encryptTo as string | undefined;
  if (recipient) checkRecipient(recipient);
  const to = values.to as string | undefined;
  if (!to) throw new UsageError('--to DIR is needed: the folder to mirror the backups into');
  const keep = values.keep as number | undefined;
  mkdirSync(to, { recursive: true });
  const r = await withPool(s, async (pool) => {
    const id = await backupVdiOf(pool, values.sr as string | undefined);
    return withRing(pool, disk, id, true, async (ring) => {
      const have = new Set(copiesIn(to, id.srUuid).map((c) => c.header.entry));
      let copied = 0;
      let skipped = 0;
      for (const rec of ring.list()) {
        const l = decodeLabel(rec.label);
        if (have.has(entryDigest(rec.label, l?.createdAt || rec.createdAt, rec.size))) {
          skipped++;
          continue;
        }
        const bytes = await copyOf(ring, rec.seq, recipient);
        writeAtomic(join(to, `xsmeta-${id.srUuid}-${l?.date ?? `seq${rec.seq}`}.xsmcopy`), bytes);
        copied++;
      }
      let removed = 0;
      if (keep !== undefined) {
        const all = copiesIn(to, id.srUuid).sort((a, b) => b.header.createdAt - a.header.createdAt);
        for (const old of all.slice(keep)) {
          rmSync(join(to, old.file));
          removed++;
        }
      }
      return { copied, skipped, removed };
    });
  });
  io.out(
    `Copied ${r.copied} backup(s), ${r.skipped} already there, ${r.removed} old copy(ies) removed`,
  );
  return 0;
}

/**
 * The backup a copy file holds, for the restore: a ring in memory with that one record,
 * reached through the same ports the restore reads a pool's ring with.
 */
async function backupFromFile(
  pool: PoolPort,
  path: string,
  { header, label, record }: Awaited<ReturnType<typeof openCopy>>,
): Promise<{ id: { srUuid: string; vdiUuid: string }; content: BackupContent; legacy: false }> {
  const id = { srUuid: header.srUuid, vdiUuid: backupVdiUuid(header.srUuid) };
  const dev = new MemoryDevice(
    Math.ceil((record.length + label.length) / 4096) * 4096 + 2 * 1024 * 1024,
  );
  const ring = await Ring.format(dev, id);
  await ring.append({ label, data: record, createdAt: header.createdAt });
  const fileDisk: DiskPort = {
    open: async () => ring,
    format: () => Promise.reject(new Error('a copy file is read-only')),
  };
  // The pool as it is, but for the one VDI: the copy file stands in for it.
  const filePool: PoolPort = Object.assign(Object.create(pool) as PoolPort, {
    attach: async () => ({ devicePath: path, detach: async () => {} }),
  });
  const content = await loadBackup({ pool: filePool, disk: fileDisk, archive }, id, undefined);
  return { id, content, legacy: false };
}

/** `xsmeta restore --from FILE` (and `xe-restore-metadata --from FILE`): from a copy file. */
export async function cmdRestoreFrom(
  file: string,
  values: Values,
  s: Settings,
  io: Io,
): Promise<number> {
  const mode = (values.mode as 'sr' | 'all' | undefined) ?? 'all';
  const dryRun = values.dryRun === true;
  const identity = values.identity as string | undefined;
  // A damaged file, or one the identity cannot open, is refused before anything is asked.
  const copy = await openCopy(file, identity);
  if (
    !dryRun &&
    !values.yes &&
    !(await confirm(`This imports VM metadata into the pool from the copy ${file}.`))
  ) {
    io.err(ABORTED);
    return 1;
  }
  const r = await withPool(s, async (pool) =>
    restoreOn(
      pool,
      s,
      { srUuid: undefined, date: undefined, mode, dryRun, force: values.force === true },
      io,
      values.json ? undefined : io.out,
      await backupFromFile(pool, file, copy),
    ),
  );
  if (values.json) io.out(JSON.stringify(r));
  else io.out(restoreSummaryLine(r.restored, r.errors));
  return Math.min(r.errors, 125);
}
