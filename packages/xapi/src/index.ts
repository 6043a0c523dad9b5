export { XapiClient } from './client.js';
export type { XapiConnectOptions } from './connect-options.js';
export type { TlsSettings } from './endpoint.js';
export type { XapiLocalCode } from './errors.js';
export { isXapiError, XapiError } from './errors.js';
export type { TransferOptions } from './handler-io.js';
export type { Ova, OvaObject } from './ova.js';
export {
  firstTarMember,
  ovaNetworks,
  readOva,
  splitExport,
  tarHeader,
  tarOne,
  writeOva,
} from './ova.js';
export { exportNetworks } from './ova-networks.js';
export { type ExportBytes, ExportSplitter, splitExportTar } from './ova-split.js';
export type {
  EventFromResult,
  HostRecord,
  NetworkRecord,
  PoolRecord,
  SrContentType,
  SrRecord,
  StringMap,
  TaskRecord,
  TaskStatus,
  VbdCreateSpec,
  VbdMode,
  VbdRecord,
  VbdType,
  VdiCreateSpec,
  VdiRecord,
  VdiType,
  VifRecord,
  VmPowerState,
  VmRecord,
  XapiDateTime,
  XapiEvent,
  XapiRecordTypes,
  XapiRef,
} from './records.js';
export { INT_FIELDS, NULL_REF } from './records.js';
export type { Transport } from './rpc.js';
export type { WaitTaskOptions } from './tasks.js';
export { parseTaskResult } from './tasks.js';
export type { VdiFormat } from './transfers.js';
export { backupVdiUuid, POOL_METADATA_BACKUP_NAMESPACE, uuidV5 } from './uuid.js';
export type { VhdBlock, VhdEvent, VhdLayout } from './vhd.js';
export { decodeVhd, encodeVhd, VHD_BLOCK, VHD_SECTOR, VhdError } from './vhd.js';
export type { XmlRpcLimits, XmlRpcValue } from './xmlrpc.js';
export { formatXapiDate, isStruct, parseXapiDate } from './xmlrpc.js';
export { decodeMethodCall, decodeMethodResponse, decodeValue } from './xmlrpc-decode.js';
export {
  type EscapeTable,
  encodeFault,
  encodeMethodCall,
  encodeMethodResponse,
  encodeValue,
  escapeTable,
  escapeXml,
  writeValue,
  XmlBytes,
} from './xmlrpc-encode.js';
