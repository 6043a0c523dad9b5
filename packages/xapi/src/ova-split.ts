/**
 * `splitExport` on the text of an `all=true` export, for the backup's fast path. Decoding a
 * whole pool's ova.xml into values took about 0.25 MiB a VM and most of the client's time;
 * here the export stays as the bytes it came in, and only an index is built: each object's place in the
 * text, and the decoded values of the few reference fields that `update_table` follows or
 * the `make_*` functions rewrite (ocaml/xapi/export.ml). A VM's export is then the text of
 * its objects, copied, with only those reference fields written again where they change, and
 * is built when it is taken, not before. What it holds is what `splitExport` gives (tested
 * against it): see ova.ts for the rules. The byte scanner is ova-scan.ts; building a VM's
 * export from the index is ova-split-build.ts.
 */
import { XapiError } from './errors.js';
import { REF_FIELDS } from './ova.js';
import {
  ARRAY,
  bad,
  DATA,
  MEMBER,
  NAME,
  NEED_MORE,
  Scanner,
  STRUCT,
  type Tag,
  VALUE,
} from './ova-scan.js';
import { type Field, type Obj, perVm } from './ova-split-build.js';

/** Fields read besides REF_FIELDS: what the walk from a VM looks at. */
const EXTRA: Record<string, string[]> = {
  VM: ['uuid', 'power_state'],
  VBD: ['empty'],
  VGPU: ['type'],
};

/** Per class, the fields the walk reads and their lengths in bytes (most names are ruled out by length). */
const WANTED = new Map<string, { want: Set<string>; lengths: Set<number> }>();
function wanted(c: string): { want: Set<string>; lengths: Set<number> } {
  let w = WANTED.get(c);
  if (!w) {
    const want = new Set([
      ...(REF_FIELDS[c]?.one ?? []),
      ...(REF_FIELDS[c]?.many ?? []),
      ...(EXTRA[c] ?? []),
    ]);
    w = { want, lengths: new Set([...want].map((f) => Buffer.byteLength(f))) };
    WANTED.set(c, w);
  }
  return w;
}

/**
 * Bytes gathered before they are scanned: an object cut by the end of the bytes so far is
 * read again from its start, and a network chunk (16-64 KiB) holds few of a pool's objects.
 */
const BATCH = 1024 * 1024;

/** Where a VM's export comes from: the bytes of the export tar at an offset. */
export type ExportBytes = (offset: number, length: number) => Uint8Array;

/**
 * Splits an `all=true` export tar (asked with `export_snapshots=false`) into per-VM export
 * tars, keyed by VM uuid, for the VMs named in `uuids` (every VM when omitted). Each is built
 * when its function is called; the tar stays referenced until every one is dropped.
 */
export function splitExportTar(
  tar: Uint8Array,
  uuids?: readonly string[],
): Map<string, () => Uint8Array> {
  const splitter = new ExportSplitter(uuids);
  splitter.push(tar);
  return splitter.finish((offset, length) => tar.subarray(offset, offset + length));
}

/**
 * The same split, fed the export tar chunk by chunk as it arrives: it keeps only the index
 * and the bytes of the object being read, so the export itself can go to a file (`push`
 * each chunk, then `finish` with a reader of that file's bytes).
 */
export class ExportSplitter {
  readonly #uuids: readonly string[] | undefined;
  #head: Buffer = Buffer.alloc(0);
  /** The length of ova.xml, once the tar header is read. */
  #size = -1;
  /** Bytes of ova.xml not read yet; `#base` is the offset in ova.xml of its first byte. */
  #buf: Buffer = Buffer.alloc(0);
  /** Bytes pushed, not scanned yet (see BATCH). */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #base = 0;
  #pos = 0;
  #received = 0;
  #state: 'root' | 'member' | 'objects' | 'done' = 'root';
  #prolog: Buffer | null = null;
  #version: Buffer | null = null;
  readonly #objects: Obj[] = [];
  readonly #s = new Scanner(Buffer.alloc(0));

  readonly #batch: number;

  /** `batchBytes`: how many bytes are gathered before they are scanned (BATCH by default). */
  constructor(uuids?: readonly string[], opts: { batchBytes?: number } = {}) {
    this.#uuids = uuids;
    this.#batch = opts.batchBytes ?? BATCH;
  }

  /** The next bytes of the export tar. */
  push(chunk: Uint8Array): void {
    let c = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#received += c.length;
    if (this.#size < 0) {
      this.#head = Buffer.concat([this.#head, c]);
      if (this.#head.length < 512) return;
      const name = this.#head.toString('latin1', 0, 100).replace(/\0.*$/s, '');
      const size = Number.parseInt(
        this.#head.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || 'x',
        8,
      );
      if (name !== 'ova.xml' || !Number.isFinite(size) || size < 0)
        throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the metadata export has no ova.xml first');
      this.#size = size;
      c = this.#head.subarray(512);
      this.#head = Buffer.alloc(0);
    }
    if (this.#state === 'done') return;
    const left = this.#size - (this.#base + this.#buf.length + this.#pendingBytes);
    if (left <= 0) return;
    if (c.length > left) c = c.subarray(0, left);
    this.#pending.push(c);
    this.#pendingBytes += c.length;
    if (this.#pendingBytes >= this.#batch || c.length === left) this.#flush();
  }

  /** Scans the pending bytes after what is not read yet (one copy, when anything is kept). */
  #flush(): void {
    if (this.#pending.length === 0 || this.#state === 'done') return;
    const rest = this.#buf.subarray(this.#pos);
    this.#base += this.#pos;
    this.#pos = 0;
    const all = rest.length === 0 ? this.#pending : [rest, ...this.#pending];
    this.#buf = all.length === 1 ? all[0]! : Buffer.concat(all);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#s.b = this.#buf;
    this.#pump();
  }

  /** Reads as far as the bytes so far go. */
  #pump(): void {
    const s = this.#s;
    const b = this.#buf;
    for (;;) {
      try {
        if (this.#state === 'done') return;
        if (this.#state === 'root') {
          const root = s.open(this.#pos, VALUE);
          const st = s.open(root.end, STRUCT);
          if (st.selfClose) throw bad('no objects');
          this.#prolog = Buffer.from(b.subarray(this.#pos, root.start));
          this.#pos = st.end;
          this.#state = 'member';
        } else if (this.#state === 'member') {
          const t = s.tag(this.#pos);
          if (t.name === STRUCT && t.close) {
            s.closing(t.end, VALUE);
            this.#state = 'done';
            return;
          }
          if (t.name !== MEMBER || t.close)
            throw bad(`expected <member> at ${this.#base + t.start}`);
          const nameOpen = s.open(t.end, NAME);
          const nameClose = s.closing(nameOpen.end, NAME);
          const name = b.toString('utf8', nameOpen.end, nameClose.start);
          const v = s.open(nameClose.end, VALUE);
          if (name === 'objects') {
            if (v.selfClose) throw bad('objects is not an array');
            const data = s.open(s.open(v.end, ARRAY).end, DATA);
            if (data.selfClose) {
              const end = s.closing(s.closing(s.closing(data.end, ARRAY).end, VALUE).end, MEMBER);
              this.#pos = end.end;
            } else {
              this.#pos = data.end;
              this.#state = 'objects';
            }
          } else {
            const end = s.skipValue(v);
            const close = s.closing(end, MEMBER);
            if (name === 'version') this.#version = Buffer.from(b.subarray(v.start, end));
            this.#pos = close.end;
          }
        } else {
          const t = s.tag(this.#pos);
          if (t.name === DATA && t.close) {
            const end = s.closing(s.closing(s.closing(t.end, ARRAY).end, VALUE).end, MEMBER);
            this.#pos = end.end;
            this.#state = 'member';
            continue;
          }
          if (t.name !== VALUE || t.close) throw bad(`expected <value> at ${this.#base + t.start}`);
          // Read in one pass; an object cut by the end of the bytes so far is NeedMore.
          const { obj, end } = readObject(s, t, this.#base);
          this.#objects.push(obj);
          this.#pos = end;
        }
      } catch (e) {
        if (e === NEED_MORE) return;
        throw e;
      }
    }
  }

  /**
   * The per-VM exports, once every byte was pushed; `read` gives bytes of the tar (offsets
   * from its start). A tar that ended early or holds no version is XAPI_PROTOCOL.
   */
  finish(read: ExportBytes): Map<string, () => Uint8Array> {
    if (this.#size < 0 || this.#received < 512 + this.#size)
      throw new XapiError('XAPI_PROTOCOL', ['ova'], 'the metadata export has no ova.xml first');
    this.#flush();
    if (this.#state !== 'done') throw bad('ends early');
    if (this.#version === null || this.#prolog === null) throw bad('no version');
    this.#buf = Buffer.alloc(0);
    return perVm(
      this.#objects,
      this.#prolog,
      this.#version,
      (o) => read(512 + o.start, o.end - o.start),
      this.#uuids,
    );
  }
}

/** One object of the export (at its `<value>` tag, ending at `end`), offsets made absolute. */
function readObject(s: Scanner, ov: Tag, base: number): { obj: Obj; end: number } {
  let cls: string | null = null;
  let id: string | null = null;
  let snapshot: Tag | null = null;
  let walked = false;
  const fields: Field[] = [];
  /** The wanted fields of a snapshot, read as its members are walked (one pass). */
  const walk = (c: string, st: Tag): number => {
    const { want, lengths } = wanted(c);
    if (want.size === 0) return s.skipValue(st);
    return s.members(st, (ns, ne, fv) => {
      const fend = s.skipValue(fv);
      // Most names are ruled out by their length alone, without decoding them.
      if (!lengths.has(ne - ns)) return fend;
      const f = s.text(ns, ne);
      if (want.has(f))
        fields.push({
          name: f,
          start: fv.start - ov.start,
          end: fend - ov.start,
          value: s.decode(fv.start, fend),
        });
      return fend;
    });
  };
  const end = s.members(ov, (ns, ne, mv) => {
    const m = s.text(ns, ne);
    // xapi writes class and id first: the snapshot is then read as it is walked.
    if (m === 'snapshot' && cls !== null) {
      walked = true;
      return walk(cls, mv);
    }
    const mend = s.skipValue(mv);
    if (m === 'class' || m === 'id') {
      const val = s.decode(mv.start, mend);
      if (typeof val !== 'string') throw bad(`object ${m} is not a string`);
      if (m === 'class') cls = val;
      else id = val;
    } else if (m === 'snapshot') snapshot = mv;
    return mend;
  });
  if (cls === null || id === null) throw bad('an object without class or id');
  const c: string = cls;
  // A snapshot written before the class: walked now that the class is known.
  if (snapshot !== null && !walked) walk(c, snapshot);
  const byName = new Map(fields.map((f) => [f.name, f.value]));
  const obj: Obj = {
    class: c,
    id,
    start: base + ov.start,
    end: base + end,
    fields,
    get: (n) => byName.get(n),
  };
  return { obj, end };
}
