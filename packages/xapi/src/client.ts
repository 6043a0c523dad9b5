/**
 * XapiClient: the one object callers hold. It only delegates, one line a method:
 * the session and its calls are `session.ts` (options: `connect-options.ts`), tasks
 * `tasks.ts`, record reads `record-calls.ts`, the HTTP handlers `transfers.ts` (over
 * `handler-io.ts`). A new capability is a function in its own file taking the `Session` (or
 * `HandlerIo`), plus one method here.
 */
import type { XapiConnectOptions } from './connect-options.js';
import { HandlerIo, type TransferOptions } from './handler-io.js';
import { getAllRecords, getAllRecordsFields, getRecord } from './record-calls.js';
import type { XapiRecordTypes, XapiRef } from './records.js';
import type { Transport } from './rpc.js';
import { Session } from './session.js';
import { Tasks, type WaitTaskOptions } from './tasks.js';
import {
  dumpDatabase,
  dumpDatabaseStream,
  exportMetadata,
  exportMetadataStream,
  exportRawVdi,
  importMetadata,
  importRawVdi,
  restoreDatabase,
  type VdiFormat,
} from './transfers.js';

export class XapiClient {
  readonly #session: Session;
  readonly #tasks: Tasks;
  readonly #io: HandlerIo;

  private constructor(session: Session) {
    this.#session = session;
    this.#tasks = new Tasks(session);
    this.#io = new HandlerIo(session, this.#tasks);
  }

  /**
   * Logs in with `session.login_with_password`. A pool slave answers `HOST_IS_SLAVE [master]`:
   * the client then connects to the master (at most 3 hops).
   */
  static async connect(opts: XapiConnectOptions): Promise<XapiClient> {
    return new XapiClient(await Session.open(opts));
  }

  /** The current session reference (`OpaqueRef:…`). */
  get sessionRef(): string {
    return this.#session.ref;
  }

  /** The master's base URL this client talks to (after any HOST_IS_SLAVE redirect). */
  get url(): string {
    return this.#session.base.href;
  }

  /** The Unix socket this client talks over, if it was connected with `socketPath`. */
  get socketPath(): string | undefined {
    return this.#session.settings.socketPath;
  }

  /** The RPC transport in use. */
  get transport(): Transport {
    return this.#session.transport;
  }

  /** Calls `method` with the session ref prepended to `params`. */
  call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return this.#session.call(method, params) as Promise<T>;
  }

  /**
   * Calls `Async.<method>`, waits for its task, returns the parsed `task.result` (an XML-RPC
   * fragment; a bare ref stays a string), and destroys the task. A failed task throws its
   * `error_info` as an XapiError.
   */
  callAsync<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return this.#tasks.callAsync(method, params) as Promise<T>;
  }

  /**
   * Waits until the task leaves `pending`; resolves with its `result` fragment, rejects with
   * its `error_info` (or TASK_CANCELLED).
   */
  waitTask(taskRef: string, opts: WaitTaskOptions = {}): Promise<string> {
    return this.#tasks.wait(taskRef, opts);
  }

  /** `<cls>.get_all_records` as a Map ref -> record (int fields as numbers). */
  getAllRecords<T>(cls: string): Promise<Map<string, T>> {
    return getAllRecords<T>(this.#session, cls);
  }

  /**
   * `<cls>.get_all_records` keeping only `fields` of each record: over JSON-RPC the other
   * fields are skipped while the answer is decoded, never built (project.ts); over XML-RPC
   * the records are decoded whole, then cut down.
   */
  getAllRecordsFields<C extends keyof XapiRecordTypes, K extends keyof XapiRecordTypes[C]>(
    cls: C,
    fields: readonly (K & string)[],
  ): Promise<Map<XapiRef, Pick<XapiRecordTypes[C], K>>> {
    return getAllRecordsFields(this.#session, cls, fields);
  }

  /** `<cls>.get_record` (int fields as numbers). */
  getRecord<T>(cls: string, ref: XapiRef): Promise<T> {
    return getRecord<T>(this.#session, cls, ref);
  }

  /** `GET /export_metadata?uuid=…|ref=…|all=true`: the tar whose first member is `ova.xml`. */
  exportMetadata(
    vm: { uuid: string } | { ref: string } | { all: true },
    opts: TransferOptions & { exportSnapshots?: boolean; includeDom0?: boolean } = {},
  ): Promise<Uint8Array> {
    return exportMetadata(this.#io, vm, opts);
  }

  /**
   * `exportMetadata` as a stream of chunks (consume it to the end, or break out), with a task
   * of ours: how a large `all=true` export goes to a file instead of memory.
   */
  exportMetadataStream(
    vm: { uuid: string } | { ref: string } | { all: true },
    opts: TransferOptions & { exportSnapshots?: boolean; includeDom0?: boolean } = {},
  ): Promise<AsyncIterable<Uint8Array>> {
    return exportMetadataStream(this.#io, vm, opts);
  }

  /** `PUT /import_metadata?restore=true&…`: the refs of the VMs created (none on a dry run). */
  importMetadata(
    body: Uint8Array,
    opts: { force?: boolean; dryRun?: boolean } & TransferOptions,
  ): Promise<string[]> {
    return importMetadata(this.#io, body, opts);
  }

  /** `GET /pool/xmldbdump`: the pool database as XML. */
  dumpDatabase(opts: TransferOptions = {}): Promise<Uint8Array> {
    return dumpDatabase(this.#io, opts);
  }

  /** `GET /pool/xmldbdump` as a stream of chunks (consume it to the end, or break out). */
  dumpDatabaseStream(opts: TransferOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    return dumpDatabaseStream(this.#io, opts);
  }

  /** `PUT /pool/xmldbdump[?dry_run=true]`: restores the pool database. */
  restoreDatabase(body: Uint8Array, opts: { dryRun: boolean } & TransferOptions): Promise<void> {
    return restoreDatabase(this.#io, body, opts);
  }

  /** `GET /export_raw_vdi?vdi=…&format=…`: the disk's content as a stream of chunks. */
  exportRawVdi(
    vdiRef: XapiRef,
    opts: { format?: VdiFormat } & TransferOptions = {},
  ): Promise<AsyncIterable<Uint8Array>> {
    return exportRawVdi(this.#io, vdiRef, opts);
  }

  /** `PUT /import_raw_vdi?vdi=…&format=…`: writes the disk; a stream needs `length`. */
  importRawVdi(
    vdiRef: XapiRef,
    data: Uint8Array | AsyncIterable<Uint8Array>,
    opts: { format?: VdiFormat; length?: number } & TransferOptions = {},
  ): Promise<void> {
    return importRawVdi(this.#io, vdiRef, data, opts);
  }

  /** `session.logout`, then closes the sockets. Idempotent; never throws. */
  logout(): Promise<void> {
    return this.#session.logout();
  }
}
