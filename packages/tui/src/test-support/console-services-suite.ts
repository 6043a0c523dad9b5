/**
 * The behaviour every `ConsoleServices` promises (see services.ts), as one suite that each
 * implementation runs: the in-memory fake the console's tests use, and the CLI's adapter over
 * the real pool, ring and event store. An implementation declares what it honours; the suite
 * skips the rest, as abstract-level's suite switches on declared features. A declared `false`
 * is a known gap, not a pass.
 * Not part of the package's API: not built, exported only under the `source` condition.
 */
import { describe, expect, it } from 'vitest';
import { rejection } from '../../../../test-support/reject.js';
import type { BackupProgress, ConsoleServices, Frequency, VmOutcome } from '../services.js';

export interface ConsoleServicesCapabilities {
  /**
   * An abort while a backup or restore runs stops it soon: the backup writes nothing, the
   * restore reports fewer than all its VMs.
   */
  readonly stopsMidRun: boolean;
  /** Backup progress is reported while the backup runs, step by step, not only at its end. */
  readonly liveProgress: boolean;
}

export interface ConsoleServicesUnderTest {
  readonly services: ConsoleServices;
  /** Ends what `make` started (a simulated pool, temporary folders). */
  close(): Promise<void>;
}

const DATE = /^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$/;
const turn = () => new Promise<void>((r) => setImmediate(r));

const failure = (p: Promise<unknown>) => rejection<Error>(p);

/** Runs `fn` on a fresh implementation, closing it whatever happens. */
async function using(
  make: () => Promise<ConsoleServicesUnderTest>,
  fn: (s: ConsoleServices) => Promise<void>,
): Promise<void> {
  const t = await make();
  try {
    await fn(t.services);
  } finally {
    await t.close();
  }
}

/** The SR scheduled backups go to (the default), else the first. */
async function someSr(s: ConsoleServices): Promise<string> {
  const srs = await s.listSrs();
  return (srs.find((x) => x.isDefault) ?? srs[0]!).uuid;
}

export function consoleServicesSuite(
  name: string,
  caps: ConsoleServicesCapabilities,
  make: () => Promise<ConsoleServicesUnderTest>,
): void {
  describe(`ConsoleServices behaviour: ${name}`, () => {
    it('lists the SRs: at least one, each once, at most one default, sizes that add up', () =>
      using(make, async (s) => {
        expect(s.needsLogin()).toBe(false);
        const srs = await s.listSrs();
        expect(srs.length).toBeGreaterThan(0);
        expect(new Set(srs.map((x) => x.uuid)).size).toBe(srs.length);
        expect(srs.filter((x) => x.isDefault).length).toBeLessThanOrEqual(1);
        for (const sr of srs) {
          expect(sr.name).not.toBe('');
          expect(sr.type).not.toBe('');
          expect(sr.freeBytes).toBeGreaterThanOrEqual(0);
          expect(sr.freeBytes).toBeLessThanOrEqual(sr.sizeBytes);
        }
      }));

    it('backs up: the new backup is listed first, the SR shows its backup disk, no progress after the end', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        const runs = [];
        for (let i = 0; i < 2; i++) {
          const reports: BackupProgress[] = [];
          const r = await s.backup(sr, (p) => reports.push(p), new AbortController().signal);
          const seen = reports.length;
          await turn();
          expect(reports.length).toBe(seen);
          expect(reports.length).toBeGreaterThan(0);
          expect(r.date).toMatch(DATE);
          expect(r.seq).toBeGreaterThan(0);
          expect(r.vmCount + r.templateCount).toBeGreaterThan(0);
          expect(r.storedBytes).toBeGreaterThan(0);
          runs.push(r);
        }
        expect(runs[1]!.seq).toBeGreaterThan(runs[0]!.seq);
        const list = await s.listBackups(sr);
        expect(list.backups.slice(0, 2).map((b) => b.seq)).toEqual([runs[1]!.seq, runs[0]!.seq]);
        const newest = list.backups[0]!;
        expect(newest).toMatchObject({
          date: runs[1]!.date,
          vmCount: runs[1]!.vmCount,
          templateCount: runs[1]!.templateCount,
        });
        expect(newest.verified).not.toBe(false);
        expect(list.usage.records.map((r) => r.seq)).toContain(runs[1]!.seq);
        expect(list.usage.used).toBeLessThanOrEqual(list.usage.capacity);
        expect((await s.listSrs()).find((x) => x.uuid === sr)!.hasBackupDisk).toBe(true);
      }));

    it.skipIf(!caps.liveProgress)('reports backup progress while it runs', () =>
      using(make, async (s) => {
        const reports: BackupProgress[] = [];
        await s.backup(await someSr(s), (p) => reports.push(p), new AbortController().signal);
        expect(reports.length).toBeGreaterThan(1);
        expect(reports.some((p) => p.total > 0 && p.done < p.total)).toBe(true);
      }),
    );

    it('a backup asked with its signal already aborted settles, rejected, and writes nothing', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        await s.backup(sr, () => {}, new AbortController().signal);
        const before = (await s.listBackups(sr)).backups.map((b) => b.seq);
        const ac = new AbortController();
        ac.abort();
        const e = await failure(s.backup(sr, () => {}, ac.signal));
        expect(e).toBeInstanceOf(Error);
        expect((await s.listBackups(sr)).backups.map((b) => b.seq)).toEqual(before);
      }));

    it.skipIf(!caps.stopsMidRun)('an abort during a backup stops it: nothing written', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        await s.backup(sr, () => {}, new AbortController().signal);
        const before = (await s.listBackups(sr)).backups.map((b) => b.seq);
        const ac = new AbortController();
        let after = false;
        let late = 0;
        const run = s.backup(
          sr,
          () => {
            if (after) late++;
            ac.abort();
          },
          ac.signal,
        );
        await failure(run);
        after = true;
        await turn();
        expect(late).toBe(0);
        expect((await s.listBackups(sr)).backups.map((b) => b.seq)).toEqual(before);
      }),
    );

    it('a dry-run restore reports each VM once, in order, and a summary that agrees; twice the same', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        const b = await s.backup(sr, () => {}, new AbortController().signal);
        const req = { srUuid: sr, seq: b.seq, mode: 'all', dryRun: true } as const;
        const summaries = [];
        for (let i = 0; i < 2; i++) {
          const seen: VmOutcome[] = [];
          const sum = await s.restore(req, (v) => seen.push(v), new AbortController().signal);
          const total = b.vmCount + b.templateCount;
          expect(seen.map((v) => v.done)).toEqual(Array.from({ length: total }, (_, k) => k + 1));
          expect(new Set(seen.map((v) => v.total))).toEqual(new Set([total]));
          expect(new Set(seen.map((v) => v.vmUuid)).size).toBe(total);
          expect(sum.restored).toBe(seen.filter((v) => v.ok).length);
          expect(sum.errors.map((e) => e.vmUuid)).toEqual(
            seen.filter((v) => !v.ok).map((v) => v.vmUuid),
          );
          for (const e of sum.errors) expect(e.message).not.toContain('\n');
          summaries.push(sum);
        }
        expect(summaries[1]).toEqual(summaries[0]);
      }));

    it.skipIf(!caps.stopsMidRun)('an abort during a restore stops it before the last VM', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        const b = await s.backup(sr, () => {}, new AbortController().signal);
        const ac = new AbortController();
        const seen: VmOutcome[] = [];
        await s
          .restore(
            { srUuid: sr, seq: b.seq, mode: 'all', dryRun: true },
            (v) => {
              seen.push(v);
              ac.abort();
            },
            ac.signal,
          )
          .catch(() => {});
        expect(seen.length).toBeGreaterThan(0);
        expect(seen.length).toBeLessThan(b.vmCount + b.templateCount);
      }),
    );

    it('a restore of a seq the ring does not keep is refused in one line, reporting no VM (never the newest instead)', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        const b = await s.backup(sr, () => {}, new AbortController().signal);
        const seen: VmOutcome[] = [];
        const e = await failure(
          s.restore(
            { srUuid: sr, seq: b.seq + 1000, mode: 'all', dryRun: true },
            (v) => seen.push(v),
            new AbortController().signal,
          ),
        );
        expect(e).toBeInstanceOf(Error);
        expect(e.message).not.toBe('');
        expect(e.message).not.toContain('\n');
        expect(seen).toEqual([]);
      }));

    it('refuses the legacy restore on an SR with a new-format backup disk, and says why; an SR without a backup disk has no backups to list', () =>
      using(make, async (s) => {
        const sr = await someSr(s);
        await s.backup(sr, () => {}, new AbortController().signal);
        const status = await s.legacyStatus(sr);
        expect(status.available).toBe(false);
        expect(status.reason ?? '').not.toBe('');
        const bare = (await s.listSrs()).find((x) => !x.hasBackupDisk && !x.hasLegacyDisk);
        expect(bare).toBeDefined();
        const e = await failure(s.listBackups(bare!.uuid));
        expect(e).toBeInstanceOf(Error);
        expect(e.message).not.toBe('');
        expect(e.message).not.toContain('\n');
      }));

    it('keeps the schedule it is given: a next run for daily, weekly, monthly; none for never', () =>
      using(make, async (s) => {
        for (const f of ['daily', 'weekly', 'monthly', 'never'] as Frequency[]) {
          await s.setSchedule(f);
          const got = await s.getSchedule();
          expect(got.frequency).toBe(f);
          if (f === 'never') expect(got.nextRunAt).toBeNull();
          else expect(Number.isNaN(Date.parse(got.nextRunAt ?? ''))).toBe(false);
        }
      }));
  });
}
