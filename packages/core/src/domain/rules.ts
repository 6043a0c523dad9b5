/**
 * Pure rules the use-cases ask before they act, so that each is decided in one place and
 * tested as data in, decision out.
 */

/** The SR a backup (or a listing) goes to: the one named, else the pool's default SR. */
export type SrChoice =
  | { readonly srUuid: string; readonly how: 'named' | 'pool-default' }
  | { readonly code: 'NO_DEFAULT_SR'; readonly reason: string };

export function chooseSr(named: string | null | undefined, poolDefault: string | null): SrChoice {
  if (named) return { srUuid: named, how: 'named' };
  if (poolDefault) return { srUuid: poolDefault, how: 'pool-default' };
  return {
    code: 'NO_DEFAULT_SR',
    reason: 'the pool has no default SR: name one with -u SR_UUID (xsmeta: --sr)',
  };
}

/** What opening the backup VDI found: a ring, nothing formatted, or another filesystem. */
export type RingFound = 'ring' | 'not-formatted' | 'foreign';

/**
 * Whether the backup disk gets formatted. Re-initialising (asked with -i) and a VDI this run
 * has just created (a thick volume may hold old bytes: it is ours whatever it holds) are
 * formatted without looking. Otherwise the disk is opened first (`found` null): a ring is
 * used, a disk with nothing on it is formatted, and one holding another filesystem (an ext3
 * legacy backup) is never formatted by a backup: refused.
 */
export function ringAction(input: {
  readonly reinit: boolean;
  readonly justCreated: boolean;
  readonly found: RingFound | null;
}): 'format' | 'look' | 'use' | 'refuse' {
  if (input.reinit || input.justCreated) return 'format';
  switch (input.found) {
    case null:
      return 'look';
    case 'ring':
      return 'use';
    case 'not-formatted':
      return 'format';
    case 'foreign':
      return 'refuse';
  }
}
