import type { BackupEvent } from '../src/index.js';

type Data<T extends BackupEvent['type']> = Extract<BackupEvent, { type: T }>['data'];

/** Run `r` of pool `p` backing up to VDI `v` on SR `s`: the backup deciders' tests start here. */
export const BACKUP_STARTED: { type: 'BackupStarted'; data: Data<'BackupStarted'> } = {
  type: 'BackupStarted',
  data: {
    runId: 'r',
    poolUuid: 'p',
    srUuid: 's',
    vdiUuid: 'v',
    keep: 25,
    trigger: 'manual',
    toolVersion: '0',
    formatVersion: 1,
    createdVdi: false,
  },
};

/** That run's record written as seq 1 (two VMs), with `given` changed. */
export const backupWritten = (
  given: Partial<Data<'BackupWritten'>> = {},
): Data<'BackupWritten'> => ({
  runId: 'r',
  srUuid: 's',
  vdiUuid: 'v',
  seq: 1,
  date: 'd',
  vmCount: 2,
  templateCount: 0,
  rawBytes: 10,
  storedBytes: 2,
  formatVersion: 1,
  evicted: [],
  ...given,
});
