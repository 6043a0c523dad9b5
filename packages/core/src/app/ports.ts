/**
 * What the backup and restore use-cases need from the world. The CLI implements these with
 * @xsmeta/xapi (pool), @xsmeta/vdi-store (disk, archive) and the system clock; tests use fakes.
 */

export interface PoolInfo {
  uuid: string;
  defaultSrUuid: string | null;
}

export interface SrInfo {
  uuid: string;
  name: string;
  description: string;
  type: string;
  vdis: { uuid: string; name: string; description: string; readOnly?: boolean }[];
}

export interface VdiInfo {
  uuid: string;
  name: string;
  srUuid: string;
  virtualSize: number;
  type: string;
}

/** A network as xapi's import matches it: by name_label, then by bridge. */
export interface NetworkKey {
  name: string;
  bridge: string;
}

export interface VmInfo {
  uuid: string;
  name: string;
  isTemplate: boolean;
  /** SRs holding the VM's disks (for `-m sr`). */
  srUuids: string[];
}

/** A VDI plugged into the control domain; detach() unplugs and destroys the VBD. */
export interface Attachment {
  devicePath: string;
  detach(): Promise<void>;
}

/** PoolPort.exportAll's answer: one builder per VM uuid, and what frees them all. */
export type ExportAll = Map<string, () => Uint8Array> & { close?(): void };

export interface PoolPort {
  pool(): Promise<PoolInfo>;
  srs(): Promise<SrInfo[]>;
  /** xapi's deterministic uuid of the Pool Metadata Backup VDI of an SR. */
  backupVdiUuid(srUuid: string): string;
  findVdi(uuid: string): Promise<VdiInfo | null>;
  createBackupVdi(srUuid: string, sizeBytes: number): Promise<VdiInfo>;
  attach(vdiUuid: string, opts: { readOnly: boolean }): Promise<Attachment>;
  /**
   * A byte-for-byte copy of a VDI as a new VDI on the same SR (verified before it returns),
   * named `nameLabel`: how a legacy disk is kept before its VDI becomes the ring.
   */
  copyVdi(vdiUuid: string, nameLabel: string): Promise<VdiInfo>;
  /**
   * The pool database (xapi's `GET /pool/xmldbdump`), whole or as chunks: a backup streams
   * chunks into the record as they arrive, so a large pool's dump is never held at once.
   */
  dumpDatabase(): Promise<Uint8Array | AsyncIterable<Uint8Array>>;
  /** VMs and custom templates to back up: no dom0, no snapshots, no default templates. */
  vms(): Promise<VmInfo[]>;
  /**
   * `vms()` and `srs()` at once, the same answers, from one listing of each class the two
   * share (a backup needs both). Optional: without it the two are asked in turn.
   */
  inventory?(): Promise<{ vms: VmInfo[]; srs: SrInfo[] }>;
  exportMetadata(vmUuid: string): Promise<Uint8Array>;
  /**
   * The fast path: every VM's metadata in one request (xapi's `export_metadata?all=true`, one
   * pass of locks), split into the per-VM exports `exportMetadata` would give, by VM uuid;
   * each is built when its function is called (once), so they are never all held at once.
   * May hold fewer VMs than asked (without `vmUuids`, every VM the export holds); a pool
   * refuses it whole when any VM is busy. Optional.
   * `close`, when given, frees what holds the exports (a spool file): a backup calls it once
   * its capture ends, whether it succeeded, failed or was aborted, built or not.
   */
  exportAll?(vmUuids?: readonly string[]): Promise<ExportAll>;
  /**
   * How many VM objects the pool holds, control domains, snapshots and templates included
   * (xapi's `VM.get_all`, references only): an upper bound of what `exportAll` holds, cheap
   * to ask, so that a backup can ask for the export before its listings are read. Optional.
   */
  vmCount?(): Promise<number>;
  importMetadata(body: Uint8Array, opts: { force: boolean; dryRun: boolean }): Promise<void>;
  /**
   * The pool's networks, and those a metadata export refers to, by name and bridge: how
   * xapi's import matches a network before it creates one. A restore uses them to keep two
   * imports from creating the same missing network at once. A pool that has neither imports
   * in parallel as before.
   */
  networks?(): Promise<NetworkKey[]>;
  exportNetworks?(body: Uint8Array): NetworkKey[];
  setSrNames(srUuid: string, name: string, description: string): Promise<void>;
  setVdiNames(vdiUuid: string, name: string, description: string): Promise<void>;
}

export interface RingRecord {
  seq: number;
  createdAt: number;
  size: number;
  label: Uint8Array;
}

/** The part of @xsmeta/vdi-store's Ring the use-cases use. */
export interface RingPort {
  list(): RingRecord[];
  append(input: {
    label: Uint8Array;
    data: Uint8Array;
    createdAt?: number;
    keep?: number;
  }): Promise<RingRecord>;
  readAll(seq: number): Promise<Uint8Array>;
  verify(): Promise<{
    ok: boolean;
    /** The root's state: a damaged or rolled-back root makes `ok` false. */
    root?: RingStatusPort;
    records: { seq: number; ok: boolean; code?: string; error?: string }[];
  }>;
  /** What opening found about the ring's root (damage, recovery); absent in fakes = clean. */
  readonly status?: RingStatusPort;
  usage(): {
    capacity: number;
    used: number;
    free: number;
    maxRecords: number;
    records: { seq: number; offset: number; size: number }[];
  };
  close(): Promise<void>;
}

export interface RingStatusPort {
  ok: boolean;
  /** One line per finding: a damaged or rolled-back root copy, records recovered, truncation. */
  warnings: string[];
}

export interface DiskPort {
  /** Opens the ring on a device; `RING_NOT_FORMATTED` (error code) when there is none. */
  open(
    devicePath: string,
    opts: { readOnly: boolean; expect: { vdiUuid: string; srUuid: string } },
  ): Promise<RingPort>;
  /**
   * Formats a ring. Without `intent` it refuses (`RING_NOT_EMPTY`) a disk that holds a ring
   * root or record headers; `'reinitialise'` is the user's confirmed -i (or a VDI just created).
   */
  format(
    devicePath: string,
    identity: { vdiUuid: string; srUuid: string; maxRecords: number; intent?: 'reinitialise' },
  ): Promise<RingPort>;
}

export interface ArchivePart {
  name: string;
  data: Uint8Array | AsyncIterable<Uint8Array>;
}

export interface ArchivePort {
  write(
    parts: AsyncIterable<ArchivePart>,
    opts: { maxStoredBytes?: number },
  ): Promise<{
    bytes: Uint8Array;
    rawBytes: number;
    storedBytes: number;
    parts: { name: string; rawBytes: number; sha256: string }[];
  }>;
  /**
   * Every part, checked (size, sha256, the record limits). With `keep`, a part it refuses is
   * checked all the same but handed out with empty `data` and never held whole.
   */
  read(
    bytes: Uint8Array,
    opts?: { keep?: (name: string) => boolean },
  ): AsyncIterable<{ name: string; data: Uint8Array; sha256: string }>;
}

/**
 * Progress of a run: `done`/`total` count VMs and custom templates (capture, restore) or
 * backups (convert); `bytes` is the running total of the phase.
 */
export type Progress = (p: {
  phase: 'capture' | 'write' | 'read' | 'restore' | 'srmeta';
  done: number;
  total: number;
  bytes: number;
  item?: string;
}) => void;
