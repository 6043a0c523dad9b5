/**
 * A backup's date: `YYYY-MM-DD-HH-MM-SS` in UTC, the name upstream's xe-backup-metadata gives
 * each backup folder (xen-api's scripts/xe-backup-metadata, `date +%F-%H-%M-%S`), and the label
 * of every record of ours. The one parser of it: the ring's records, the conversion of legacy
 * backups and the legacy disk reader (@xsmeta/legacy-compat) all read dates through it.
 */

/** `2025-03-01T10:00:00.000Z` -> `2025-03-01-10-00-00`. */
export function backupDate(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 10)}-${iso.slice(11, 13)}-${iso.slice(14, 16)}-${iso.slice(17, 19)}`;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$/;

/**
 * The moment a backup date names, or null unless it is one: exactly the format, and a real
 * calendar moment (no 30 February, no hour 24, no second 60; a year below 100, which
 * `Date.UTC` would read as 19xx, neither), that is a date `backupDate` gives back unchanged.
 */
export function parseBackupDate(date: string): Date | null {
  const m = DATE_RE.exec(date);
  if (!m) return null;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return backupDate(t) === date ? t : null;
}

/**
 * A date not yet used on this disk, and later than every date on it, so that the records'
 * dates sort as they were written: the moment, or a second after the newest date taken when
 * that one is not before it (dates bumped ahead by more than one backup a second, whose
 * oldest was evicted, or a clock set back).
 */
export function uniqueDate(at: Date, taken: ReadonlySet<string>): string {
  let t = at.getTime();
  for (const d of taken) {
    const next = (parseBackupDate(d)?.getTime() ?? Number.NEGATIVE_INFINITY) + 1000;
    if (next > t) t = next;
  }
  return backupDate(new Date(t));
}
