import { type BackupContent, type PoolPort, runRestore, type VdiInfo } from '../src/index.js';

/** The backup VDI `vdi` on the default SR `sr` that `stubPool` finds. */
export const STUB_BACKUP_VDI: VdiInfo = {
  uuid: 'vdi',
  name: 'Pool Metadata Backup',
  srUuid: 'sr',
  virtualSize: 1,
  type: 'user',
};

/**
 * A pool port for use-case tests that inject one behaviour: pool `pool`, whose default SR `sr`
 * holds the backup VDI `vdi`, no VMs, an empty database dump. A call that changes the pool or
 * moves metadata (create, copy, attach, export, import) throws unless the test gives it.
 */
export function stubPool(given: Partial<PoolPort> = {}): PoolPort {
  const unused = (name: string) => async (): Promise<never> => {
    throw new Error(`the stub pool's ${name} was not expected`);
  };
  return {
    pool: async () => ({ uuid: 'pool', defaultSrUuid: 'sr' }),
    srs: async () => [],
    backupVdiUuid: () => STUB_BACKUP_VDI.uuid,
    findVdi: async () => STUB_BACKUP_VDI,
    createBackupVdi: unused('createBackupVdi'),
    copyVdi: unused('copyVdi'),
    attach: unused('attach'),
    dumpDatabase: async () => new Uint8Array(),
    vms: async () => [],
    exportMetadata: unused('exportMetadata'),
    importMetadata: unused('importMetadata'),
    setSrNames: async () => {},
    setVdiNames: async () => {},
    ...given,
  };
}

/** Restores `content` (every VM) into `pool`, with no disk, archive or event store. */
export function restore(pool: PoolPort, content: BackupContent, dryRun = false) {
  return runRestore(
    {
      pool,
      disk: {} as never,
      archive: {} as never,
      clock: { now: () => new Date(0) },
      events: null,
    },
    { mode: 'all', dryRun, force: false },
    { id: { srUuid: 'sr', vdiUuid: 'vdi' }, content, legacy: false },
  );
}
