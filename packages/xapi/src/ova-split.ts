/**
 * `splitExport` on the text of an `all=true` export, for the backup's fast path. Decoding a
 * whole pool's ova.xml into values took about 0.25 MiB a VM and most of the client's time;
 * here the export stays as the bytes it came in, and only an index is built: each object's place in the
 * text, and the decoded values of the few reference fields that `update_table` follows or
 * the `make_*` functions rewrite (ocaml/xapi/export.ml). A VM's export is then the text of
 * its objects, copied, with only those reference fields written again where they change, and
 * is built when it is taken, not before. What it holds is what `splitExport` gives (tested
 * against it): see ova.ts for the rules.
 */
import { XapiError } from './errors.js';
import { REF_FIELDS, tarOne } from './ova.js';
import type { XmlRpcValue } from './xmlrpc.js';
import { decodeValue } from './xmlrpc-decode.js';
import { encodeValue } from './xmlrpc-encode.js';

const NULL_REF = 'OpaqueRef:NULL';
const enc = new TextEncoder();

/** Fields read besides REF_FIELDS: what the walk from a VM looks at. */
const EXTRA: Record<string, string[]> = {
  VM: ['uuid', 'power_state'],
  VBD: ['empty'],
  VGPU: ['type'],
};

function bad(why: string): XapiError {
  return new XapiError('XAPI_PROTOCOL', ['ova'], `ova.xml: ${why}`);
}

interface Field {
  name: string;
  start: number;
  end: number;
  value: XmlRpcValue;
}

interface Obj {
  class: string;
  id: string;
  start: number;
  end: number;
  /** The reference fields, in text order. */
  fields: Field[];
  get(name: string): XmlRpcValue | undefined;
}

/** A tag name as a number: its length, first and last bytes (unique among XML-RPC's tags). */
const key = (name: string) =>
  name.length * 65536 + name.charCodeAt(0) * 256 + name.charCodeAt(name.length - 1);
const VALUE = key('value');
const STRUCT = key('struct');
const MEMBER = key('member');
const NAME = key('name');
const ARRAY = key('array');
const DATA = key('data');
const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;

interface Tag {
  name: number;
  close: boolean;
  selfClose: boolean;
  start: number;
  end: number;
}

const names = new Map(
  ['value', 'struct', 'member', 'name', 'array', 'data'].map((n) => [key(n), n] as const),
);

/** A leaf string value (`<value>text</value>` or with `<string>`) with no entity to decode. */
const PLAIN = /^<value>(?:<string>)?([^<&]*)(?:<\/string>)?<\/value>$/;
/** An array of such strings. */
const PLAIN_LIST =
  /^<value><array><data>((?:<value>(?:<string>)?[^<&]*(?:<\/string>)?<\/value>)*)<\/data><\/array><\/value>$/;
const PLAIN_ITEM = /<value>(?:<string>)?([^<&]*)(?:<\/string>)?<\/value>/g;

/** Thrown by the scanner when the bytes so far end inside what it reads (more will come). */
class NeedMore extends Error {}

class Scanner {
  constructor(public b: Buffer) {}

  /** The next tag at or after `i` (declarations and comments skipped). */
  tag(i: number): Tag {
    const b = this.b;
    for (;;) {
      const lt = b.indexOf(LT, i);
      if (lt < 0 || lt + 1 >= b.length) throw new NeedMore();
      const c = b[lt + 1];
      if (c === 0x3f /* ? */ || c === 0x21 /* ! */) {
        const close = b.indexOf(c === 0x3f ? '?>' : '>', lt + 2);
        if (close < 0) throw new NeedMore();
        i = close + 1;
        continue;
      }
      const gt = b.indexOf(GT, lt + 1);
      if (gt < 0) throw new NeedMore();
      const close = c === SLASH;
      const selfClose = b[gt - 1] === SLASH;
      let n = lt + (close ? 2 : 1);
      const from = n;
      while (n < gt) {
        const d = b[n]!;
        if (d === SLASH || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
        n++;
      }
      const len = n - from;
      const name = len < 1 ? -1 : len * 65536 + b[from]! * 256 + b[n - 1]!;
      return { name, close, selfClose, start: lt, end: gt + 1 };
    }
  }

  open(i: number, name: number): Tag {
    const t = this.tag(i);
    if (t.name !== name || t.close) throw bad(`expected <${names.get(name)}> at ${t.start}`);
    return t;
  }

  closing(i: number, name: number): Tag {
    const t = this.tag(i);
    if (t.name !== name || !t.close) throw bad(`expected </${names.get(name)}> at ${t.start}`);
    return t;
  }

  /** Whether `value` is spelled at `i` (v-a-l-u-e). */
  isValue(i: number): boolean {
    const b = this.b;
    return (
      b[i] === 0x76 &&
      b[i + 1] === 0x61 &&
      b[i + 2] === 0x6c &&
      b[i + 3] === 0x75 &&
      b[i + 4] === 0x65
    );
  }

  /**
   * From a `<value>` tag: the index after its `</value>`. Only `<value` and `</value>` count
   * (text holds no `<`: XML escapes it).
   */
  skipValue(v: Tag): number {
    if (v.selfClose) return v.end;
    const b = this.b;
    let depth = 1;
    let i = v.end;
    while (depth > 0) {
      const lt = b.indexOf(LT, i);
      if (lt < 0 || lt + 8 > b.length) throw new NeedMore();
      if (b[lt + 1] === SLASH) {
        if (this.isValue(lt + 2) && b[lt + 7] === GT) {
          depth--;
          i = lt + 8;
        } else i = lt + 2;
        continue;
      }
      if (this.isValue(lt + 1)) {
        const t = this.tag(lt);
        if (t.name === VALUE && !t.selfClose) depth++;
        i = t.end;
        continue;
      }
      i = lt + 1;
    }
    return i;
  }

  /**
   * The members of a struct value (at its `<value>` tag): `each` gets the member's name and
   * its value tag, and returns where that value ends (reading or skipping it). Returns the
   * index after the struct's `</value>`.
   */
  members(v: Tag, each: (name: () => string, value: Tag, nameBytes: number) => number): number {
    if (v.selfClose) throw bad(`expected a struct at ${v.start}`);
    const st = this.open(v.end, STRUCT);
    if (st.selfClose) return this.closing(st.end, VALUE).end;
    let i = st.end;
    for (;;) {
      const t = this.tag(i);
      if (t.name === STRUCT && t.close) return this.closing(t.end, VALUE).end;
      if (t.name !== MEMBER || t.close) throw bad(`expected <member> at ${t.start}`);
      const nameOpen = this.open(t.end, NAME);
      const nameClose = this.closing(nameOpen.end, NAME);
      // Decoded only when asked: most members of a snapshot are skipped unread.
      const name = () => this.b.toString('utf8', nameOpen.end, nameClose.start);
      const value = this.open(nameClose.end, VALUE);
      i = this.closing(each(name, value, nameClose.start - nameOpen.end), MEMBER).end;
    }
  }

  /** The items of an array value (at its `<value>` tag); returns after its `</value>`. */
  items(v: Tag, each: (value: Tag) => number): number {
    if (v.selfClose) throw bad(`expected an array at ${v.start}`);
    let i = this.open(v.end, ARRAY).end;
    const data = this.open(i, DATA);
    if (data.selfClose) return this.closing(this.closing(data.end, ARRAY).end, VALUE).end;
    i = data.end;
    for (;;) {
      const t = this.tag(i);
      if (t.name === DATA && t.close) break;
      if (t.name !== VALUE || t.close) throw bad(`expected <value> at ${t.start}`);
      i = each(t);
    }
    i = this.closing(i, DATA).end;
    i = this.closing(i, ARRAY).end;
    return this.closing(i, VALUE).end;
  }

  /** A value, decoded: the common plain strings and lists of them without the full decoder. */
  decode(start: number, end: number): XmlRpcValue {
    const text = this.b.toString('utf8', start, end);
    const one = PLAIN.exec(text);
    if (one) return one[1]!;
    const list = PLAIN_LIST.exec(text);
    if (list) return [...list[1]!.matchAll(PLAIN_ITEM)].map((m) => m[1]!);
    return decodeValue(text);
  }
}

const refList = (v: XmlRpcValue | undefined): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];

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
  #base = 0;
  #pos = 0;
  #received = 0;
  #state: 'root' | 'member' | 'objects' | 'done' = 'root';
  #prolog: Buffer | null = null;
  #version: Buffer | null = null;
  readonly #objects: Obj[] = [];
  readonly #s = new Scanner(Buffer.alloc(0));

  constructor(uuids?: readonly string[]) {
    this.#uuids = uuids;
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
    const left = this.#size - (this.#base + this.#buf.length);
    if (left <= 0) return;
    if (c.length > left) c = c.subarray(0, left);
    // Keep what is not read yet, then the new bytes (a copy only when something is kept).
    const rest = this.#buf.subarray(this.#pos);
    this.#base += this.#pos;
    this.#pos = 0;
    this.#buf = rest.length === 0 ? c : Buffer.concat([rest, c]);
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
        if (e instanceof NeedMore) return;
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
    const want = new Set([
      ...(REF_FIELDS[c]?.one ?? []),
      ...(REF_FIELDS[c]?.many ?? []),
      ...(EXTRA[c] ?? []),
    ]);
    if (want.size === 0) return s.skipValue(st);
    const lengths = new Set([...want].map((f) => Buffer.byteLength(f)));
    return s.members(st, (nameOf, fv, nameBytes) => {
      const fend = s.skipValue(fv);
      // Most names are ruled out by their length alone, without decoding them.
      if (!lengths.has(nameBytes)) return fend;
      const f = nameOf();
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
  const end = s.members(ov, (nameOf, mv) => {
    const m = nameOf();
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

/** The builders of the per-VM exports (see splitExport in ova.ts for what each holds). */
function perVm(
  objects: Obj[],
  prolog: Buffer,
  version: Buffer,
  bytesOf: (o: Obj) => Uint8Array,
  uuids: readonly string[] | undefined,
): Map<string, () => Uint8Array> {
  const byId = new Map(objects.map((o) => [o.id, o]));
  const order = new Map(objects.map((o, i) => [o.id, i]));
  const proxies = objects.filter((o) => o.class === 'PVS_proxy');
  const want = uuids ? new Set(uuids) : null;
  const out = new Map<string, () => Uint8Array>();
  for (const vm of objects) {
    if (vm.class !== 'VM') continue;
    const uuid = String(vm.get('uuid') ?? '');
    if (want && !want.has(uuid)) continue;
    out.set(uuid, () => {
      const keep = new Set<string>();
      const add = (id: XmlRpcValue | undefined): Obj | undefined => {
        if (typeof id !== 'string') return undefined;
        const o = byId.get(id);
        if (o) keep.add(id);
        return o;
      };
      const addVdi = (id: XmlRpcValue | undefined) => {
        const vdi = add(id);
        if (vdi) add(vdi.get('SR'));
      };
      add(vm.id);
      const vifs = refList(vm.get('VIFs'));
      for (const id of vifs) {
        const vif = add(id);
        if (vif) add(vif.get('network'));
      }
      for (const id of refList(vm.get('VBDs'))) {
        const vbd = add(id);
        if (vbd && vbd.get('empty') !== true) addVdi(vbd.get('VDI'));
      }
      for (const id of refList(vm.get('VGPUs'))) {
        const vgpu = add(id);
        if (vgpu) {
          add(vgpu.get('type'));
          add(vgpu.get('GPU_group'));
        }
      }
      for (const p of proxies) {
        const vif = p.get('VIF');
        if (typeof vif === 'string' && vifs.includes(vif)) {
          add(p.id);
          add(p.get('site'));
        }
      }
      for (const id of refList(vm.get('VTPMs'))) add(id);
      if (vm.get('power_state') === 'Suspended') addVdi(vm.get('suspend_VDI'));
      add(vm.get('metrics'));
      add(vm.get('guest_metrics'));
      add(vm.get('resident_on'));
      add(vm.get('affinity'));
      const parts: Uint8Array[] = [
        prolog,
        enc.encode('<value><struct><member><name>version</name>'),
        version,
        enc.encode('</member><member><name>objects</name><value><array><data>'),
      ];
      for (const id of [...keep].sort((a, b) => order.get(a)! - order.get(b)!)) {
        const o = byId.get(id)!;
        const rules = REF_FIELDS[o.class];
        const ob = bytesOf(o);
        let at = 0;
        for (const f of o.fields) {
          let next: XmlRpcValue | null = null;
          if (rules?.one.includes(f.name)) {
            const v = f.value;
            if (typeof v === 'string' && v !== NULL_REF && !keep.has(v)) next = NULL_REF;
          } else if (rules?.many.includes(f.name) && Array.isArray(f.value)) {
            const list = refList(f.value).filter((r) => keep.has(r));
            if (list.length !== f.value.length) next = list;
          }
          if (next === null) continue;
          parts.push(ob.subarray(at, f.start), enc.encode(encodeValue(next)));
          at = f.end;
        }
        parts.push(ob.subarray(at));
      }
      parts.push(enc.encode('</data></array></value></member></struct></value>'));
      return tarOne('ova.xml', Buffer.concat(parts));
    });
  }
  return out;
}
