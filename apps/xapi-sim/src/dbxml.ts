// The pool database dump (GET /pool/xmldbdump) in xapi's db_xml format, and the check of a
// database restore as ocaml/xapi/pool_db_backup.ml makes it.
import { escapeTable, XmlBytes } from '@xsmeta/xapi';
import { Failure } from './errors.js';
import type { Db, Field, Rec } from './model.js';
import type { Pool } from './pool.js';
import { SCHEMA_MAJOR, SCHEMA_MINOR } from './records.js';

/** xapi's db_xml format: field namespaces joined by `__`, sets and maps as S-expressions. */
const NAMESPACES = ['name', 'memory', 'VCPUs', 'actions', 'PV', 'HVM'];

function column(field: string): string {
  for (const ns of NAMESPACES)
    if (field.startsWith(`${ns}_`)) return `${ns}__${field.slice(ns.length + 1)}`;
  return field;
}

const columns = new Map<string, string>();
function columnOf(field: string): string {
  let c = columns.get(field);
  if (c === undefined) {
    c = column(field);
    columns.set(field, c);
  }
  return c;
}

function fieldOf(col: string): string {
  return col.replace('__', '_');
}

/**
 * A value as an attribute: its S-expression (a set `('a' 'b')`, a map `(('k' 'v'))`, other
 * values as they print; atoms single-quoted with `\` and `'` backslashed), %-escaped as xapi
 * writes it (`%` -> `%%`, space -> `%.`, tab -> `%t`, newline -> `%n`), then XML-escaped
 * (`&`, `<`, `>`, `"`). Each of these escapes maps each char on its own and none touches
 * what another writes, so they run as one table per char as the bytes are written, with the
 * S-expression's own spaces written as `%.` directly.
 */
const PCT_XML: Record<string, string> = {
  '%': '%%',
  ' ': '%.',
  '\t': '%t',
  '\n': '%n',
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
};
const VALUE = escapeTable(PCT_XML);
const ATOM = escapeTable({ ...PCT_XML, '\\': '\\\\', "'": "\\'" });
const RAW = escapeTable({});

function writeAtom(out: XmlBytes, x: unknown): void {
  out.ascii("'");
  out.text(typeof x === 'string' ? x : (JSON.stringify(x) as string), ATOM);
  out.ascii("'");
}

function writeAttr(out: XmlBytes, v: Field): void {
  if (Array.isArray(v)) {
    out.ascii('(');
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out.ascii('%.');
      writeAtom(out, v[i]);
    }
    out.ascii(')');
  } else if (v !== null && typeof v === 'object') {
    out.ascii('(');
    let first = true;
    for (const k of Object.keys(v)) {
      out.ascii(first ? '(' : '%.(');
      writeAtom(out, k);
      out.ascii('%.');
      writeAtom(out, v[k]);
      out.ascii(')');
      first = false;
    }
    out.ascii(')');
  } else out.text(String(v), VALUE);
}

function unpct(s: string): string {
  return s.replace(/%(.)/g, (_, c: string) => ({ '%': '%', '.': ' ', t: '\t', n: '\n' })[c] ?? c);
}

const unXml = (s: string) =>
  s.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, n: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[n]!,
  );

/** The dump as UTF-8 bytes, written straight into one buffer. */
export function dumpDb(db: Db, generation: number): Buffer {
  const out = new XmlBytes();
  out.ascii(
    `<?xml version="1.0" encoding="UTF-8"?><database><manifest><pair key="schema_major_vsn" value="${SCHEMA_MAJOR}"/><pair key="schema_minor_vsn" value="${SCHEMA_MINOR}"/><pair key="generation_count" value="${generation}"/></manifest>`,
  );
  for (const [cls, t] of db.tables) {
    if (cls === 'task' || cls === 'session') continue;
    out.ascii('<table name="');
    out.text(cls, RAW);
    out.ascii('">');
    for (const [ref, rec] of t) {
      out.ascii('<row ref="');
      out.text(ref, RAW);
      out.ascii('" __ctime="0" __mtime="0" ');
      let first = true;
      for (const k of Object.keys(rec)) {
        if (!first) out.ascii(' ');
        out.text(columnOf(k), RAW);
        out.ascii('="');
        writeAttr(out, rec[k]!);
        out.ascii('"');
        first = false;
      }
      out.ascii('/>');
    }
    out.ascii('</table>');
  }
  out.ascii('</database>');
  return out.bytes();
}

/** Parses a dump: manifest pairs and rows (values kept as their S-expression text). */
export function parseDbDump(xml: string): {
  manifest: Record<string, string>;
  tables: Map<string, Map<string, Rec>>;
} {
  const manifest: Record<string, string> = {};
  for (const m of xml.matchAll(/<pair key="([^"]*)" value="([^"]*)"\/>/g))
    manifest[m[1]!] = unXml(m[2]!);
  if (!xml.includes('<database>') || manifest.schema_major_vsn === undefined)
    throw new Error('not a pool database dump');
  const tables = new Map<string, Map<string, Rec>>();
  for (const t of xml.matchAll(/<table name="([^"]+)">(.*?)<\/table>/gs)) {
    const rows = new Map<string, Rec>();
    for (const r of t[2]!.matchAll(/<row ([^>]*)\/>/g)) {
      const rec: Rec = {};
      let ref = '';
      for (const a of r[1]!.matchAll(/([A-Za-z0-9_]+)="([^"]*)"/g)) {
        if (a[1] === 'ref') ref = a[2]!;
        else if (!a[1]!.startsWith('__')) rec[fieldOf(a[1]!)] = unpct(unXml(a[2]!));
      }
      rows.set(ref, rec);
    }
    tables.set(t[1]!, rows);
  }
  return { manifest, tables };
}

/** pool_db_backup.ml `restore_from_xml`: the version check; the simulator restores dry only. */
export function restoreDb(_pool: Pool, xml: string, dryRun: boolean): void {
  let parsed: ReturnType<typeof parseDbDump>;
  try {
    parsed = parseDbDump(xml);
  } catch (e) {
    throw new Failure('INTERNAL_ERROR', [(e as Error).message]);
  }
  if (Number(parsed.manifest.schema_major_vsn) !== 5)
    throw new Failure('RESTORE_INCOMPATIBLE_VERSION', []);
  if (dryRun) return;
  // A real pool restarts on the restored database; the simulator checks only (README).
  throw new Failure('OPERATION_NOT_ALLOWED', [
    'the simulator restores pool databases with dry_run=true only',
  ]);
}
