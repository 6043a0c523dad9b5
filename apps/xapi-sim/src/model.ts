import { randomUUID } from 'node:crypto';

/** A field value as XAPI holds it. */
export type Field =
  | string
  | number
  | boolean
  | string[]
  | { [k: string]: string }
  | Field[]
  | { [k: string]: Field };
export type Rec = { [field: string]: Field };

export const NULL = 'OpaqueRef:NULL';
export const newRef = () => `OpaqueRef:${randomUUID()}`;

export interface XapiEventRow {
  id: number;
  timestamp: string;
  class: string;
  operation: 'add' | 'mod' | 'del';
  ref: string;
  snapshot?: Rec;
}

/**
 * What xapi never writes to its database file, so a change to it alone does not make the
 * simulator save its state (pool.json): the classes declared `~persist:PersistNothing`
 * (ocaml/idl/datamodel.ml: session; task) and the fields declared `~persist:false`
 * (ocaml/idl/datamodel_common.ml `allowed_and_current_operations`: the operations an object is
 * locked for, such as a metadata export's lock of every VM). Their values are still kept
 * when something else is saved.
 */
const TRANSIENT_CLASSES = new Set(['task', 'session']);
const TRANSIENT_FIELDS = new Set(['current_operations', 'allowed_operations']);

/** The pool's objects by class and ref, plus the event log that event.from reads. */
export class Db {
  readonly tables = new Map<string, Map<string, Rec>>();
  private events: XapiEventRow[] = [];
  private lastId = 0;
  /**
   * Whether event.from has handed out a token yet. Before that no one can ask for the events
   * after one (xapi's tokens are opaque: ocaml/xapi/xapi_event.ml), so an event only moves the
   * count on, and no copy of its object is made (an export of every VM locks and unlocks each:
   * two copies of every VM record, a fifth of the export's time at 1,000 VMs).
   */
  private tokensOut = false;
  private waiters = new Set<() => void>();
  dirty = false;

  table(cls: string): Map<string, Rec> {
    let t = this.tables.get(cls);
    if (!t) {
      t = new Map();
      this.tables.set(cls, t);
    }
    return t;
  }

  get(cls: string, ref: string): Rec | undefined {
    return this.tables.get(cls)?.get(ref);
  }

  byUuid(cls: string, uuid: string): [string, Rec] | undefined {
    for (const [ref, r] of this.table(cls)) if (r.uuid === uuid) return [ref, r];
    return undefined;
  }

  add(cls: string, rec: Rec, ref = newRef()): string {
    this.table(cls).set(ref, rec);
    this.emit(cls, 'add', ref, rec);
    return ref;
  }

  mod(cls: string, ref: string, patch: Rec): void {
    const r = this.get(cls, ref);
    if (!r) return;
    Object.assign(r, patch);
    this.emit(
      cls,
      'mod',
      ref,
      r,
      Object.keys(patch).some((f) => !TRANSIENT_FIELDS.has(f)),
    );
  }

  del(cls: string, ref: string): void {
    if (this.table(cls).delete(ref)) this.emit(cls, 'del', ref);
  }

  private emit(
    cls: string,
    operation: XapiEventRow['operation'],
    ref: string,
    snapshot?: Rec,
    persistent = true,
  ): void {
    if (persistent && !TRANSIENT_CLASSES.has(cls)) this.dirty = true;
    if (!this.tokensOut) {
      this.lastId++;
      return;
    }
    this.events.push({
      id: ++this.lastId,
      timestamp: new Date().toISOString(),
      class: cls.toLowerCase(),
      operation,
      ref,
      ...(snapshot ? { snapshot: structuredClone(snapshot) } : {}),
    });
    if (this.events.length > 10_000) this.events.splice(0, 5_000);
    for (const w of this.waiters) w();
  }

  /** event.from: events after `token` of `classes`; waits up to timeoutMs for one. */
  async eventsFrom(
    classes: string[],
    token: string,
    timeoutMs: number,
  ): Promise<{ events: XapiEventRow[]; token: string }> {
    this.tokensOut = true;
    const wanted = new Set(classes.map((c) => c.toLowerCase()));
    const all = wanted.has('*');
    if (token === '') {
      const events: XapiEventRow[] = [];
      for (const [cls, t] of this.tables) {
        if (!all && !wanted.has(cls.toLowerCase())) continue;
        for (const [ref, rec] of t)
          events.push({
            id: this.lastId,
            timestamp: new Date().toISOString(),
            class: cls.toLowerCase(),
            operation: 'add',
            ref,
            snapshot: structuredClone(rec),
          });
      }
      return { events, token: String(this.lastId) };
    }
    const from = Number(token);
    const pick = () => this.events.filter((e) => e.id > from && (all || wanted.has(e.class)));
    let found = pick();
    if (found.length === 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const check = () => {
          if (pick().length > 0) done();
        };
        const timer = setTimeout(done, timeoutMs);
        this.waiters.add(check);
      });
      found = pick();
    }
    return { events: found, token: String(this.lastId) };
  }

  toJSON(): Record<string, Record<string, Rec>> {
    const out: Record<string, Record<string, Rec>> = {};
    for (const [cls, t] of this.tables)
      if (cls !== 'task' && cls !== 'session') out[cls] = Object.fromEntries(t);
    return out;
  }

  static fromJSON(j: Record<string, Record<string, Rec>>): Db {
    const db = new Db();
    for (const [cls, t] of Object.entries(j)) db.tables.set(cls, new Map(Object.entries(t)));
    return db;
  }
}
