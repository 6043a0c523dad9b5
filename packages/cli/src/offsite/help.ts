// Help of the off-site copy commands (kept apart so that --help loads nothing else).
export const OFFSITE_HELP: Record<string, string> = {
  export: `usage: xsmeta export [--sr UUID] --seq N [--out FILE|-] [--encrypt-to RECIPIENT]
  Writes backup N of the SR's ring as one self-describing, checksummed file (stdout: -).
  --encrypt-to age1…  encrypt the record to an age X25519 recipient (the header stays readable)`,
  import: `usage: xsmeta import FILE [--sr UUID] [--create] [--identity FILE]
  Puts the backup a copy file holds into the SR's ring (--create: make the backup VDI first).`,
  restoreFrom: `       xsmeta restore --from FILE [--identity FILE] [--mode sr|all] [--dry-run] [--force] [--yes] [--json]
  Restores from a copy file (xsmeta export or copy) instead of the SR's ring; an encrypted
  copy needs its age identity file (--identity or XSMETA_AGE_IDENTITY).`,
  copy: `usage: xsmeta copy [--sr UUID] --to DIR [--keep N] [--encrypt-to RECIPIENT]
  Mirrors the SR's backups into DIR as copy files, skipping those already there (by digest),
  then keeps the newest N of this SR's copies there (default: all).`,
};
