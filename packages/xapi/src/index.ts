export type { TransferOptions, VdiFormat, WaitTaskOptions, XapiConnectOptions } from './client.js';
export { parseTaskResult, XapiClient } from './client.js';
export type { XapiLocalCode } from './errors.js';
export { isXapiError, XapiError } from './errors.js';
export type { TlsSettings } from './http.js';
export type { Ova, OvaObject } from './ova.js';
export { ovaNetworks, readOva, splitExport, tarOne, writeOva } from './ova.js';
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
export { backupVdiUuid, POOL_METADATA_BACKUP_NAMESPACE, uuidV5 } from './uuid.js';
export type { VhdBlock, VhdEvent, VhdLayout } from './vhd.js';
export { decodeVhd, encodeVhd, VHD_BLOCK, VHD_SECTOR, VhdError } from './vhd.js';
export type { XmlRpcLimits, XmlRpcValue } from './xmlrpc.js';
export {
  decodeMethodCall,
  decodeMethodResponse,
  decodeValue,
  encodeFault,
  encodeMethodCall,
  encodeMethodResponse,
  encodeValue,
  escapeXml,
  formatXapiDate,
  isStruct,
  parseXapiDate,
} from './xmlrpc.js';
