import { describe, expect, it } from 'vitest';
import type { SrChoice } from '../services.js';
import { srItems } from './sr-list.js';

const sr = (uuid: string, hasBackupDisk: boolean, hasLegacyDisk?: boolean): SrChoice => ({
  uuid,
  name: `SR ${uuid}`,
  type: 'nfs',
  freeBytes: 1 << 30,
  sizeBytes: 2 << 30,
  hasBackupDisk,
  ...(hasLegacyDisk === undefined ? {} : { hasLegacyDisk }),
  isDefault: false,
});

const SRS = [sr('own', true), sr('none', false), sr('old', false, true), sr('clean', false, false)];
const shown = (purpose: 'restore' | 'legacy') =>
  srItems(SRS, 80, purpose).map((i) => [i.key, i.label.replace(/^.*\s{2}/, ''), i.tone]);

describe('srItems', () => {
  it('restore dims the SRs without a Pool Metadata Backup disk', () => {
    expect(shown('restore')).toEqual([
      ['own', 'backup disk', 'normal'],
      ['none', 'no backup disk', 'dim'],
      ['old', 'no backup disk', 'dim'],
      ['clean', 'no backup disk', 'dim'],
    ]);
  });

  it("legacy keeps an SR's backup disk selectable: upstream writes its ext3 there since XSA-459", () => {
    expect(shown('legacy')).toEqual([
      ['own', 'backup disk', 'normal'],
      ['none', '', 'normal'],
      ['old', 'legacy disk', 'normal'],
      ['clean', 'no legacy disk', 'dim'],
    ]);
  });
});
