/**
 * xapi's HTTP handlers that move metadata, the pool database and disks, one function each,
 * over the mechanics of `handler-io.ts`.
 */
import { XapiError } from './errors.js';
import type { HandlerIo, TransferOptions } from './handler-io.js';
import type { XapiRef } from './records.js';
import { parseTaskResult } from './tasks.js';

export type VdiFormat = 'raw' | 'vhd';

/** The VM(s) of a metadata export: one by uuid or ref, or every VM but the default templates. */
export type MetadataExportTarget = { uuid: string } | { ref: string } | { all: true };

export interface MetadataExportOptions extends TransferOptions {
  exportSnapshots?: boolean;
  includeDom0?: boolean;
}

/**
 * `GET /export_metadata?uuid=…|ref=…|all=true`: the tar whose first member is `ova.xml`.
 * `exportSnapshots` is sent when given: xapi's handler includes a VM's snapshots unless
 * `export_snapshots=false`, whereas `xe vm-export --metadata` sends false by default
 * (include-snapshots, ocaml/xapi-cli-server/cli_operations.ml; ocaml/xapi/export.ml).
 * `{ all: true }` exports every VM that is not a default template in one tar, under one
 * pass of locks.
 */
export function exportMetadata(
  io: HandlerIo,
  vm: MetadataExportTarget,
  opts: MetadataExportOptions,
): Promise<Uint8Array> {
  // export.ml `metadata_handler` sends the whole tar with its Content-Length, or HTTP 500
  return io.download('/export_metadata', exportQuery(vm, opts), opts, true);
}

/**
 * `exportMetadata` as a stream of chunks (consume it to the end, or break out), with a task
 * of ours: how a large `all=true` export goes to a file instead of memory.
 */
export function exportMetadataStream(
  io: HandlerIo,
  vm: MetadataExportTarget,
  opts: MetadataExportOptions,
): Promise<AsyncIterable<Uint8Array>> {
  return io.downloadStream('/export_metadata', exportQuery(vm, opts), opts);
}

/** The query of `GET /export_metadata` (ocaml/xapi/export.ml `metadata_handler`). */
function exportQuery(
  vm: MetadataExportTarget,
  opts: MetadataExportOptions,
): Record<string, string> {
  const query: Record<string, string> =
    'uuid' in vm ? { uuid: vm.uuid } : 'ref' in vm ? { ref: vm.ref } : { all: 'true' };
  if (opts.exportSnapshots !== undefined)
    query.export_snapshots = opts.exportSnapshots ? 'true' : 'false';
  // with all=true the handler includes the control domain unless include_dom0=false
  if (opts.includeDom0 !== undefined) query.include_dom0 = opts.includeDom0 ? 'true' : 'false';
  return query;
}

/**
 * `PUT /import_metadata?restore=true&force=…&dry_run=…`: imports a metadata export, keeping
 * uuids (the CLI's `--preserve`). Resolves with the refs of the VMs created (none on a dry
 * run); rejects with the task's error (e.g. VDI_LOCATION_MISSING, DUPLICATE_MAC_SEED).
 */
export async function importMetadata(
  io: HandlerIo,
  body: Uint8Array,
  opts: { force?: boolean; dryRun?: boolean } & TransferOptions,
): Promise<string[]> {
  const query = {
    restore: 'true',
    force: opts.force ? 'true' : 'false',
    dry_run: opts.dryRun ? 'true' : 'false',
  };
  const result = parseTaskResult(await io.upload('/import_metadata', query, body, undefined, opts));
  if (result === '') return [];
  if (typeof result === 'string') return result.split(/[\s,]+/).filter((r) => r !== '');
  if (Array.isArray(result) && result.every((r) => typeof r === 'string'))
    return result as string[];
  throw new XapiError(
    'XAPI_PROTOCOL',
    ['import result'],
    'import_metadata task result is not a list of refs',
  );
}

/**
 * `GET /pool/xmldbdump`: the pool database as XML. xapi sends it without a length and closes
 * the connection (ocaml/xapi/pool_db_backup.ml), so the body is trusted only once its task
 * has succeeded.
 */
export function dumpDatabase(io: HandlerIo, opts: TransferOptions): Promise<Uint8Array> {
  return io.download('/pool/xmldbdump', {}, opts);
}

/** `GET /pool/xmldbdump` as a stream of chunks (consume it to the end, or break out). */
export function dumpDatabaseStream(
  io: HandlerIo,
  opts: TransferOptions,
): Promise<AsyncIterable<Uint8Array>> {
  return io.downloadStream('/pool/xmldbdump', {}, opts);
}

/** `PUT /pool/xmldbdump[?dry_run=true]`: restores the pool database. */
export async function restoreDatabase(
  io: HandlerIo,
  body: Uint8Array,
  opts: { dryRun: boolean } & TransferOptions,
): Promise<void> {
  await io.upload('/pool/xmldbdump', opts.dryRun ? { dry_run: 'true' } : {}, body, undefined, opts);
}

/** `GET /export_raw_vdi?vdi=…&format=…`: the disk's content as a stream of chunks. */
export function exportRawVdi(
  io: HandlerIo,
  vdiRef: XapiRef,
  opts: { format?: VdiFormat } & TransferOptions,
): Promise<AsyncIterable<Uint8Array>> {
  return io.downloadStream('/export_raw_vdi', { vdi: vdiRef, format: opts.format ?? 'raw' }, opts);
}

/** `PUT /import_raw_vdi?vdi=…&format=…`: writes the disk; a stream needs `length`. */
export async function importRawVdi(
  io: HandlerIo,
  vdiRef: XapiRef,
  data: Uint8Array | AsyncIterable<Uint8Array>,
  opts: { format?: VdiFormat; length?: number } & TransferOptions,
): Promise<void> {
  const query = { vdi: vdiRef, format: opts.format ?? 'raw' };
  await io.upload('/import_raw_vdi', query, data, opts.length, opts);
}
