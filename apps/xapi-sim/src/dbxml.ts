// The pool database dump (GET /pool/xmldbdump) in xapi's db_xml format, and the check of a
// database restore as ocaml/xapi/pool_db_backup.ml makes it.
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

function fieldOf(col: string): string {
  return col.replace('__', '_');
}

const sq = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

function sexpr(v: Field): string {
  if (Array.isArray(v))
    return `(${v.map((x) => sq(typeof x === 'string' ? x : JSON.stringify(x))).join(' ')})`;
  if (v !== null && typeof v === 'object')
    return `(${Object.entries(v)
      .map(([k, x]) => `(${sq(k)} ${sq(typeof x === 'string' ? x : JSON.stringify(x))})`)
      .join(' ')})`;
  return String(v);
}

/** %-escapes as xapi writes them: `%` -> `%%`, space -> `%.`, tab -> `%t`, newline -> `%n`. */
function pct(s: string): string {
  return s.replace(/[% \t\n]/g, (c) => ({ '%': '%%', ' ': '%.', '\t': '%t', '\n': '%n' })[c]!);
}

function unpct(s: string): string {
  return s.replace(/%(.)/g, (_, c: string) => ({ '%': '%', '.': ' ', t: '\t', n: '\n' })[c] ?? c);
}

const xmlAttr = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const unXml = (s: string) =>
  s.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, n: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[n]!,
  );

export function dumpDb(db: Db, generation: number): string {
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?><database><manifest><pair key="schema_major_vsn" value="${SCHEMA_MAJOR}"/><pair key="schema_minor_vsn" value="${SCHEMA_MINOR}"/><pair key="generation_count" value="${generation}"/></manifest>`,
  ];
  for (const [cls, t] of db.tables) {
    if (cls === 'task' || cls === 'session') continue;
    out.push(`<table name="${cls}">`);
    for (const [ref, rec] of t) {
      const attrs = Object.entries(rec).map(([k, v]) => `${column(k)}="${xmlAttr(pct(sexpr(v)))}"`);
      out.push(`<row ref="${ref}" __ctime="0" __mtime="0" ${attrs.join(' ')}/>`);
    }
    out.push('</table>');
  }
  out.push('</database>');
  return out.join('');
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
