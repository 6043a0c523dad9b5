import { Text } from 'ink';
import type { ReactNode } from 'react';
import { fit, formatBytes } from '../format.js';
import type { SrChoice } from '../services.js';
import type { ListItem } from './widgets.js';

/**
 * Which flow shows the list: its disk column names the ring's disk (backup, restore) or a
 * disk of the old scripts (legacy); restore flows dim the SRs they cannot restore from.
 */
export type SrPurpose = 'backup' | 'restore' | 'legacy';

function columns(width: number): { name: number; type: number; free: number } {
  const name = Math.max(12, Math.min(32, width - 2 - 44));
  return { name, type: 9, free: 10 };
}

function diskText(sr: SrChoice, purpose: SrPurpose): string {
  if (purpose === 'legacy') {
    // Upstream's scripts (since XSA-459) write their ext3 to this same disk: whether it holds
    // a ring or old backups is learnt on Enter (legacyStatus), not guessed here.
    if (sr.hasBackupDisk) return 'backup disk';
    if (sr.hasLegacyDisk === undefined) return '';
    return sr.hasLegacyDisk ? 'legacy disk' : 'no legacy disk';
  }
  return sr.hasBackupDisk ? 'backup disk' : 'no backup disk';
}

/** The SR list's header line, aligned with `srItems`. */
export function SrHeader(props: { width: number; purpose: SrPurpose }): ReactNode {
  const c = columns(props.width);
  const text = `  ${'Name'.padEnd(c.name)} ${'Type'.padEnd(c.type)} ${'Free'.padStart(c.free)}  ${
    props.purpose === 'legacy' ? 'Disk' : 'Backups'
  }`;
  return (
    <Text bold wrap="truncate-end">
      {text}
    </Text>
  );
}

/** One line per SR: name, type, free space, whether it holds a backup disk, the default. */
export function srItems(srs: readonly SrChoice[], width: number, purpose: SrPurpose): ListItem[] {
  const c = columns(width);
  return srs.map((sr) => {
    const usable =
      purpose === 'backup' ||
      (purpose === 'restore' ? sr.hasBackupDisk : sr.hasLegacyDisk !== false || sr.hasBackupDisk);
    return {
      key: sr.uuid,
      label: `${fit(sr.name, c.name).padEnd(c.name)} ${fit(sr.type, c.type).padEnd(c.type)} ${formatBytes(
        sr.freeBytes,
      ).padStart(c.free)}  ${diskText(sr, purpose)}${sr.isDefault ? ' (default)' : ''}`,
      tone: usable ? 'normal' : 'dim',
    };
  });
}
