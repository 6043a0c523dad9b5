import { INT_FIELDS, type XmlRpcValue } from '@xsmeta/xapi';
import { Failure } from './errors.js';
import type { Rec } from './model.js';
import type { Pool } from './pool.js';

// ------------------------------------------------------------------------------------------

const CLASSES = [
  'pool',
  'host',
  'VM',
  'VBD',
  'VIF',
  'VDI',
  'SR',
  'network',
  'task',
  'PBD',
  'VM_metrics',
];

type Handler = (pool: Pool, args: XmlRpcValue[]) => XmlRpcValue | Promise<XmlRpcValue>;

/** A method: its handler and how many parameters it takes after the session. */
interface Method {
  h: Handler;
  arity: number;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Failure('FIELD_TYPE_ERROR', [what]);
  return v;
}

function methods(): Map<string, Method> {
  const table = new Map<string, Method>();
  const m = {
    set(name: string, h: Handler) {
      table.set(name, { h, arity: arityOf(name) });
    },
  };
  for (const cls of CLASSES) {
    m.set(`${cls}.get_all_records`, (p) => Object.fromEntries(p.db.table(cls)) as XmlRpcValue);
    m.set(`${cls}.get_all`, (p) => [...p.db.table(cls).keys()]);
    m.set(`${cls}.get_record`, (p, [ref]) => p.rec(cls, ref) as XmlRpcValue);
    m.set(`${cls}.get_uuid`, (p, [ref]) => p.rec(cls, ref).uuid as string);
    m.set(`${cls}.get_by_uuid`, (p, [uuid]) => {
      const hit = p.db.byUuid(cls, str(uuid, 'uuid'));
      if (!hit) throw new Failure('UUID_INVALID', [cls, String(uuid)]);
      return hit[0];
    });
    // Only classes with a name have get_by_name_label / set_name_* (VBD.get_by_name_label
    // answers MESSAGE_METHOD_UNKNOWN on a real pool).
    if (!NAMED.has(cls)) {
      addOtherConfig(m, cls);
      continue;
    }
    m.set(`${cls}.get_by_name_label`, (p, [name]) =>
      [...p.db.table(cls)].filter(([, r]) => r.name_label === name).map(([ref]) => ref),
    );
    m.set(`${cls}.set_name_label`, (p, [ref, v]) => {
      p.rec(cls, ref);
      p.db.mod(cls, ref as string, { name_label: str(v, 'name_label') });
      return '';
    });
    m.set(`${cls}.set_name_description`, (p, [ref, v]) => {
      p.rec(cls, ref);
      p.db.mod(cls, ref as string, { name_description: str(v, 'name_description') });
      return '';
    });
    addOtherConfig(m, cls);
  }
  defineRest(m);
  return table;
}

function addOtherConfig(m: { set(name: string, h: Handler): void }, cls: string): void {
  m.set(`${cls}.add_to_other_config`, (p, [ref, k, v]) => {
    const r = p.rec(cls, ref);
    // ocaml/database/db_cache_impl.ml `process_structured_field_locked`: on the master an
    // add of a key already there raises Duplicate_key (db_idempotent_map is off by default),
    // which ocaml/xapi/exnHelper.ml reports as MAP_DUPLICATE_KEY [class; field; ref; key].
    if (Object.hasOwn(r.other_config as object, str(k, 'key')))
      throw new Failure('MAP_DUPLICATE_KEY', [cls, 'other_config', String(ref), String(k)]);
    p.db.mod(cls, ref as string, {
      other_config: {
        ...(r.other_config as Record<string, string>),
        [str(k, 'key')]: str(v, 'value'),
      },
    });
    return '';
  });
  m.set(`${cls}.remove_from_other_config`, (p, [ref, k]) => {
    const r = p.rec(cls, ref);
    const oc = { ...(r.other_config as Record<string, string>) };
    delete oc[str(k, 'key')];
    p.db.mod(cls, ref as string, { other_config: oc });
    return '';
  });
}

function defineRest(m: { set(name: string, h: Handler): void }): void {
  m.set('VDI.create', (p, [spec]) => p.createVdi(spec as Rec));
  m.set('VDI.destroy', (p, [ref]) => {
    p.destroyVdi(str(ref, 'vdi'));
    return '';
  });
  m.set('VBD.create', (p, [spec]) => p.createVbd(spec as Rec));
  m.set('VBD.plug', (p, [ref]) => {
    p.plug(str(ref, 'vbd'));
    return '';
  });
  m.set('VBD.unplug', (p, [ref]) => {
    p.unplug(str(ref, 'vbd'));
    return '';
  });
  // On the control domain unplug_force is unplug (xapi_vbd.ml `unplug_force`), so what
  // makes VBD.unplug fail there (a `fail` rule on it too) makes unplug_force fail.
  m.set('VBD.unplug_force', (p, [ref]) => {
    const vbd = p.rec('VBD', str(ref, 'vbd'));
    if (p.db.get('VM', vbd.VM as string)?.is_control_domain) {
      const injected = p.faults.failure('VBD.unplug');
      if (injected) throw injected;
    }
    p.unplug(ref as string);
    return '';
  });
  m.set('VBD.destroy', (p, [ref]) => {
    p.destroyVbd(str(ref, 'vbd'));
    return '';
  });
  m.set('SR.scan', (p, [ref]) => {
    p.scanSr(str(ref, 'sr'));
    return '';
  });
  m.set('VM.destroy', (p, [ref]) => {
    p.destroyVm(str(ref, 'vm'));
    return '';
  });
  m.set('pool.set_default_SR', (p, [ref, sr]) => {
    p.rec('SR', sr);
    p.db.mod('pool', str(ref, 'pool'), { default_SR: sr as string });
    return '';
  });
  m.set('task.create', (p, [label, desc]) => p.createTask(str(label, 'label'), String(desc ?? '')));
  m.set('task.destroy', (p, [ref]) => {
    p.rec('task', ref);
    p.db.del('task', ref as string);
    return '';
  });
  m.set('task.cancel', (p, [ref]) => {
    const t = p.rec('task', ref);
    if (t.status === 'pending')
      p.db.mod('task', ref as string, {
        status: 'cancelled',
        error_info: ['TASK_CANCELLED', ref as string],
      });
    return '';
  });
  for (const f of ['status', 'result', 'progress', 'error_info'])
    m.set(`task.get_${f}`, (p, [ref]) => p.rec('task', ref)[f] as XmlRpcValue);
  m.set('event.from', async (p, [classes, token, timeout]) => {
    const r = await p.db.eventsFrom(
      (classes as string[]) ?? [],
      String(token ?? ''),
      Math.min(60, Number(timeout ?? 0)) * 1000,
    );
    return { events: r.events as unknown as XmlRpcValue, valid_ref_counts: {}, token: r.token };
  });
  m.set('event.inject', (p, [cls, ref]) => {
    const c = CLASSES.find((x) => x.toLowerCase() === String(cls).toLowerCase()) ?? String(cls);
    const r = p.rec(c, ref);
    p.db.mod(c, ref as string, { ...r });
    return '';
  });
  m.set(
    'host.get_software_version',
    (p, [ref]) => p.rec('host', ref).software_version as XmlRpcValue,
  );
}

/** Classes that have a name_label (and so get_by_name_label, set_name_*), per xapi's datamodel. */
const NAMED = new Set(['pool', 'host', 'VM', 'VDI', 'SR', 'network', 'task']);

/** Parameters after the session, per method (the datamodel's message parameters). */
function arityOf(name: string): number {
  const short = name.slice(name.indexOf('.') + 1);
  const fixed: Record<string, number> = {
    get_all_records: 0,
    get_all: 0,
    set_name_label: 2,
    set_name_description: 2,
    add_to_other_config: 3,
    remove_from_other_config: 2,
    set_default_SR: 2,
    create: name === 'task.create' ? 2 : 1,
    from: 3,
    inject: 2,
  };
  return fixed[short] ?? 1;
}

// int fields (@xsmeta/xapi's INT_FIELDS, as ocaml/idl/datamodel*.ml types them): over JSON-RPC
// xapi sends them as JSON numbers, over XML-RPC as strings (ocaml-rpc); the simulator holds
// them as strings.
function wireRecord(cls: string, rec: unknown, json: boolean): unknown {
  const fields = INT_FIELDS[cls];
  if (!fields || !rec || typeof rec !== 'object') return rec;
  const out = { ...(rec as Rec) };
  for (const f of fields) if (f in out) out[f] = json ? Number(out[f]) : String(out[f]);
  return out;
}

/** The value of `method` as xapi puts it on the wire (JSON-RPC or XML-RPC). */
function onWire(method: string, v: XmlRpcValue, json: boolean): XmlRpcValue {
  const m = /^(?:Async\.)?([A-Za-z_]+)\.(get_record|get_all_records|get_([A-Za-z_]+))$/.exec(
    method,
  );
  if (m && m[2] === 'get_record') return wireRecord(m[1]!, v, json) as XmlRpcValue;
  if (m && m[2] === 'get_all_records')
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>).map(([k, r]) => [k, wireRecord(m[1]!, r, json)]),
    ) as XmlRpcValue;
  if (m?.[3] && INT_FIELDS[m[1]!]?.includes(m[3]))
    return (json ? Number(v) : String(v)) as XmlRpcValue;
  if (method === 'event.from') {
    const r = v as { events: { class: string; snapshot?: unknown }[] };
    const cls = (c: string) => CLASSES.find((x) => x.toLowerCase() === c) ?? c;
    return {
      ...(v as object),
      events: r.events.map((e) =>
        e.snapshot ? { ...e, snapshot: wireRecord(cls(e.class), e.snapshot, json) } : e,
      ),
    } as XmlRpcValue;
  }
  return v;
}

const METHODS = methods();

/**
 * Calls a host in emergency mode still answers (datamodel.ml `emergency_calls`, the session
 * and host ones the simulator has).
 */
const EMERGENCY_CALLS = new Set([
  'session.slave_local_login',
  'session.slave_local_login_with_password',
  'session.local_logout',
  'host.is_in_emergency_mode',
  'host.local_assert_healthy',
]);

export function isEmergencyCall(method: string): boolean {
  return EMERGENCY_CALLS.has(method);
}

/** Whether records of `cls` have `field` (they all carry the class's full field set). */
function hasField(pool: Pool, cls: string, field: string): boolean {
  const [first] = pool.db.table(cls).values();
  return first !== undefined && field in first;
}

function countMismatch(method: string, expected: number, got: number): Failure {
  // server_helpers.ml `parameter_count_mismatch_failure` [call; expected; received], without
  // the session.
  return new Failure('MESSAGE_PARAMETER_COUNT_MISMATCH', [method, String(expected), String(got)]);
}

/** One RPC call as xapi's generated server dispatches it (gen_server.ml). */
export async function dispatch(
  pool: Pool,
  method: string,
  params: XmlRpcValue[],
  ctx: { json: boolean; trusted: boolean },
): Promise<XmlRpcValue> {
  return onWire(method, await call(pool, method, params, ctx.trusted), ctx.json);
}

async function call(
  pool: Pool,
  method: string,
  params: XmlRpcValue[],
  trusted: boolean,
): Promise<XmlRpcValue> {
  if (method === 'system.listMethods')
    return [
      ...METHODS.keys(),
      'session.login_with_password',
      'session.logout',
      // As xapi, Async variants only for calls that act, not for field getters.
      ...[...METHODS.keys()].filter((k) => !/\.get_/.test(k)).map((k) => `Async.${k}`),
    ];
  if (
    method === 'session.login_with_password' ||
    method === 'session.slave_local_login_with_password'
  ) {
    // uname, pwd, and (login_with_password) version and originator, which have defaults.
    const max = method === 'session.login_with_password' ? 4 : 2;
    if (params.length < 2 || params.length > max) throw countMismatch(method, 2, params.length);
    return pool.login(String(params[0]), String(params[1]), trusted);
  }
  const inner = method.startsWith('Async.') ? method.slice(6) : method;
  const get = /^([A-Za-z_]+)\.get_([A-Za-z_]+)$/.exec(inner);
  const known =
    METHODS.get(inner) ??
    (inner === 'session.logout' || inner === 'session.get_this_host'
      ? { h: null, arity: inner === 'session.logout' ? 0 : 1 }
      : get &&
          CLASSES.includes(get[1]!) &&
          !method.startsWith('Async.') &&
          hasField(pool, get[1]!, get[2]!)
        ? { h: null, arity: 1 }
        : undefined);
  if (!known || (method.startsWith('Async.') && !METHODS.has(inner)))
    throw new Failure('MESSAGE_METHOD_UNKNOWN', [method]);
  if (params.length !== known.arity + 1)
    throw countMismatch(method, known.arity, Math.max(0, params.length - 1));
  pool.checkSession(params[0]);
  const args = params.slice(1);
  if (method === 'session.logout') {
    pool.logout(params[0] as string);
    return '';
  }
  if (method === 'session.get_this_host') return pool.pool()[1].master as string;
  if (method.startsWith('Async.')) {
    const h = METHODS.get(inner)!.h;
    const task = pool.createTask(`Async.${inner}`);
    setImmediate(async () => {
      try {
        pool.finishTask(task, { result: await h(pool, args) });
      } catch (e) {
        pool.finishTask(task, {
          error: e instanceof Failure ? e : new Failure('INTERNAL_ERROR', [String(e)]),
        });
      }
    });
    return task;
  }
  if (known.h) return known.h(pool, args);
  const r = pool.rec(get![1]!, args[0]);
  if (get![2]! in r) return r[get![2]!] as XmlRpcValue;
  throw new Failure('MESSAGE_METHOD_UNKNOWN', [method]);
}
