import { BACKUP_FORMAT_VERSION } from '../version.js';
import { AppError } from './errors.js';

/**
 * The layout of one backup record (an archive of parts, see @xsmeta/vdi-store):
 * - `pool-db.xml`              the pool database dump (GET /pool/xmldbdump)
 * - `vms/<uuid>.ova.tar`       each VM's metadata export (GET /export_metadata)
 * - `templates/<uuid>.ova.tar` each custom template's
 * - `srmeta.xml`               SR and VDI names, upstream's SRMETA.xml one-line format
 * - `vm-map.json`              [{uuid, name, isTemplate, srUuids}] for `-m sr`
 * - `manifest.json`            last: what the record holds, with each part's size and sha256
 */
export const PART = {
  poolDb: 'pool-db.xml',
  srmeta: 'srmeta.xml',
  vmMap: 'vm-map.json',
  manifest: 'manifest.json',
  vm: (uuid: string, isTemplate: boolean) => `${isTemplate ? 'templates' : 'vms'}/${uuid}.ova.tar`,
} as const;

export interface Manifest {
  formatVersion: number;
  tool: string;
  toolVersion: string;
  poolUuid: string;
  srUuid: string;
  vdiUuid: string;
  date: string;
  createdAt: number;
  vmCount: number;
  templateCount: number;
  /** A record converted from a legacy backup: its format and the VDI it was read from. */
  converted?: { from: 'legacy'; formatVersion: number; vdiUuid?: string };
  /** VMs left out because xapi kept refusing their export: the backup is partial. */
  skipped?: SkippedVm[];
  parts: { name: string; rawBytes: number; sha256: string }[];
}

/** A VM (or custom template) a backup does not hold, and why. */
export interface SkippedVm {
  uuid: string;
  name: string;
  isTemplate: boolean;
  /** SRs holding its disks (so that `-m sr` can say which of them it misses). */
  srUuids: string[];
  /** xapi's error code, e.g. OTHER_OPERATION_IN_PROGRESS. */
  code: string;
  reason: string;
}

export interface VmMapEntry {
  uuid: string;
  name: string;
  isTemplate: boolean;
  srUuids: string[];
}

/** What the ring's index keeps for each record so that listing reads no record. */
export interface Label {
  date: string;
  createdAt: number;
  formatVersion: number;
  poolUuid: string;
  srUuid: string;
  vmCount: number;
  templateCount: number;
  rawBytes: number;
  converted?: boolean;
  /** How many VMs the backup left out (absent: none). */
  skipped?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeLabel(l: Label): Uint8Array {
  return enc.encode(JSON.stringify(l));
}

/** Decodes a record's label; a foreign or damaged one gives null (listed as unknown). */
export function decodeLabel(bytes: Uint8Array): Label | null {
  try {
    const l = JSON.parse(dec.decode(bytes)) as Partial<Label>;
    if (
      typeof l.date !== 'string' ||
      typeof l.formatVersion !== 'number' ||
      typeof l.vmCount !== 'number'
    )
      return null;
    return {
      date: l.date,
      createdAt: Number(l.createdAt ?? 0),
      formatVersion: l.formatVersion,
      poolUuid: String(l.poolUuid ?? ''),
      srUuid: String(l.srUuid ?? ''),
      vmCount: l.vmCount,
      templateCount: Number(l.templateCount ?? 0),
      rawBytes: Number(l.rawBytes ?? 0),
      ...(l.converted ? { converted: true } : {}),
      ...(typeof l.skipped === 'number' && l.skipped > 0 ? { skipped: l.skipped } : {}),
    };
  } catch {
    return null;
  }
}

// backup.ts takes its record's date from here; the date rules live in the domain.
export { uniqueDate } from '../domain/backup-date.js';

const xmlEscape = (s: string) =>
  s.replace(
    /[<>&"'\n\r\t]/g,
    (c) =>
      ({
        '<': '&lt;',
        '>': '&gt;',
        '&': '&amp;',
        '"': '&quot;',
        "'": '&apos;',
        '\n': '&#10;',
        '\r': '&#13;',
        '\t': '&#9;',
      })[c]!,
  );

export interface SrMeta {
  uuid: string;
  name: string;
  description: string;
  vdis: { uuid: string; name: string; description: string }[];
}

/** Upstream's SRMETA.xml: one line, `<meta><sr uuid name_label name_description><vdi .../></sr></meta>`. */
export function encodeSrMeta(srs: SrMeta[]): string {
  const attrs = (x: { uuid: string; name: string; description: string }) =>
    `uuid="${xmlEscape(x.uuid)}" name_label="${xmlEscape(x.name)}" name_description="${xmlEscape(x.description)}"`;
  return `<meta>${srs.map((sr) => `<sr ${attrs(sr)}>${sr.vdis.map((v) => `<vdi ${attrs(v)}/>`).join('')}</sr>`).join('')}</meta>`;
}

const xmlUnescape = (s: string) =>
  s.replace(
    /&(lt|gt|amp|quot|apos|#(\d{1,7})|#x([0-9a-fA-F]{1,6}));/g,
    (_, n: string, d?: string, h?: string) => {
      if (d) return String.fromCodePoint(Math.min(Number(d), 0x10ffff));
      if (h) return String.fromCodePoint(Math.min(Number.parseInt(h, 16), 0x10ffff));
      return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[n]!;
    },
  );

/** Parses SRMETA (ours or a legacy one); bounded, tolerant of attribute order and quoting. */
export function decodeSrMeta(xml: string): SrMeta[] {
  if (xml.length > 64 * 1024 * 1024) throw new AppError('BACKUP_INVALID', 'SRMETA is too large');
  const out: SrMeta[] = [];
  const tag = /<(sr|vdi)\b([^>]*?)(\/?)>/g;
  const attr = /([a-z_]+)\s*=\s*("([^"]*)"|'([^']*)')/g;
  let m: RegExpExecArray | null = tag.exec(xml);
  while (m !== null) {
    const a: Record<string, string> = {};
    for (const x of m[2]!.matchAll(attr)) a[x[1]!] = xmlUnescape(x[3] ?? x[4] ?? '');
    const item = {
      uuid: a.uuid ?? '',
      name: a.name_label ?? '',
      description: a.name_description ?? '',
    };
    if (m[1] === 'sr') out.push({ ...item, vdis: [] });
    else out[out.length - 1]?.vdis.push(item);
    m = tag.exec(xml);
  }
  return out.filter((s) => s.uuid);
}

/** Refuses a backup written by a newer format than this build reads; older ones pass. */
export function checkFormatVersion(v: number): void {
  if (!Number.isInteger(v) || v < 1)
    throw new AppError('BACKUP_INVALID', `backup has an invalid format version ${v}`);
  if (v > BACKUP_FORMAT_VERSION) {
    throw new AppError(
      'BACKUP_FORMAT_UNSUPPORTED',
      `this backup was written with backup format version ${v}; this xsmeta reads format versions up to ${BACKUP_FORMAT_VERSION}: upgrade xsmeta to restore it`,
    );
  }
}
