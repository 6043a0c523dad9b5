import { createHash } from 'node:crypto';
import { XapiError } from './errors.js';

/** The namespace xapi uses to derive the Pool Metadata Backup VDI uuid (ocaml/xapi/xapi_vdi.ml). */
export const POOL_METADATA_BACKUP_NAMESPACE = 'e93e0639-2bdb-4a59-8b46-352b3f408c19';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** RFC 4122 version-5 (SHA-1) uuid of `name` (UTF-8) in `namespace`. */
export function uuidV5(namespace: string, name: string): string {
  if (!UUID_RE.test(namespace)) {
    throw new XapiError('XAPI_INVALID_ARGUMENT', ['namespace'], 'namespace is not a uuid');
  }
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * The uuid xapi gives the `Pool Metadata Backup` VDI on the SR `srUuid`: uuid5 over the SR
 * uuid string in the namespace {@link POOL_METADATA_BACKUP_NAMESPACE}.
 */
export function backupVdiUuid(srUuid: string): string {
  return uuidV5(POOL_METADATA_BACKUP_NAMESPACE, srUuid);
}
