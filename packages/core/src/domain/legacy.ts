/**
 * Which legacy (ext3) backup disk may be read, if any: a pure rule that every front-end asks.
 *
 * - Legacy disks are read only when the user opts in (`-o`, or choosing the console's
 *   "from Legacy Backup" item): any guest can write one (XSA-459).
 * - A VDI the user names (`-x`) is read as named.
 * - The SR's own backup VDI (its uuid derived from the SR's: a guest cannot choose it) holding
 *   an ext3 image is what upstream's own scripts wrote after the XSA-459 fix: read it, no scan.
 * - XenServer's rule: once the SR holds a backup VDI of the new format (a ring, even a damaged
 *   one), legacy restore without a named VDI is unavailable (the console cannot name one; the
 *   CLI needs `-o -x`). A blank backup VDI holds no backup: the SR is scanned.
 * - Otherwise every VDI of the SR is scanned for the marker, and more than one candidate is
 *   refused by whoever scans (see `chooseLegacyCandidate`).
 */
export type BackupVdiContent = 'ring' | 'legacy' | 'blank' | 'unreadable';

export type LegacyAccess =
  | { readonly allowed: true; readonly vdiUuid: string; readonly how: 'named' | 'backup-vdi' }
  | { readonly allowed: true; readonly vdiUuid: null; readonly how: 'scan' }
  | { readonly allowed: false; readonly code: LegacyRefusal; readonly reason: string };

export type LegacyRefusal = 'LEGACY_NOT_ALLOWED' | 'LEGACY_UNAVAILABLE' | 'LEGACY_AMBIGUOUS';

export function legacyAccess(input: {
  readonly optedIn: boolean;
  readonly srUuid: string;
  /** The VDI named by the user (`-x`), if any. */
  readonly namedVdi?: string | undefined;
  /** The SR's deterministic backup VDI and what it holds; null when it does not exist. */
  readonly backupVdi: { readonly uuid: string; readonly holds: BackupVdiContent } | null;
}): LegacyAccess {
  if (!input.optedIn)
    return {
      allowed: false,
      code: 'LEGACY_NOT_ALLOWED',
      reason:
        'legacy backup disks are read only when you allow it (-o, or xsmeta legacy): any guest can forge one (XSA-459)',
    };
  if (input.namedVdi) return { allowed: true, vdiUuid: input.namedVdi, how: 'named' };
  const own = input.backupVdi;
  if (own?.holds === 'legacy') return { allowed: true, vdiUuid: own.uuid, how: 'backup-vdi' };
  // A blank backup VDI holds no backup of any format: the SR is scanned as if it had none.
  if (own && own.holds !== 'blank')
    return {
      allowed: false,
      code: 'LEGACY_UNAVAILABLE',
      reason: `SR ${input.srUuid} holds a backup VDI of the new format (${own.uuid}): restore from it, or name a legacy VDI explicitly with -o -x VDI_UUID (xsmeta legacy: --vdi VDI_UUID)`,
    };
  return { allowed: true, vdiUuid: null, how: 'scan' };
}

/** After a scan: exactly one candidate is trusted; none or several are refused, named. */
export function chooseLegacyCandidate(
  srUuid: string,
  found: readonly string[],
): { readonly vdiUuid: string } | { readonly code: LegacyRefusal; readonly reason: string } {
  if (found.length === 1) return { vdiUuid: found[0]! };
  if (found.length === 0)
    return { code: 'LEGACY_UNAVAILABLE', reason: `no legacy backup VDI on SR ${srUuid}` };
  return {
    code: 'LEGACY_AMBIGUOUS',
    reason: `${found.length} VDIs on SR ${srUuid} look like legacy backups (${found.join(', ')}): any guest can forge one; name the right one with -x VDI_UUID (xsmeta legacy: --vdi VDI_UUID)`,
  };
}

/**
 * Whether an error met while one legacy backup is read damages that backup only (it is
 * listed as damaged, or skipped by a conversion) rather than the whole disk: a `LEGACY_*`
 * refusal of the reader, but not its time budget or its limits, which end the run.
 */
export function damagesOneLegacyBackup(code: string | undefined): boolean {
  return (
    code?.startsWith('LEGACY_') === true && code !== 'LEGACY_TIMEOUT' && code !== 'LEGACY_LIMIT'
  );
}
