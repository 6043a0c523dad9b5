import type { XmlRpcValue } from '@xsmeta/xapi';
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

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new Failure('FIELD_TYPE_ERROR', [what]);
  return v;
}

function methods(): Map<string, Handler> {
  const m = new Map<string, Handler>();
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
    m.set(`${cls}.add_to_other_config`, (p, [ref, k, v]) => {
      const r = p.rec(cls, ref);
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
  // The device is gone either way here (a file SR has no backend to wait for).
  m.set('VBD.unplug_force', (p, [ref]) => {
    p.unplug(str(ref, 'vbd'));
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
  return m;
}

const METHODS = methods();
const NO_SESSION = new Set([
  'session.login_with_password',
  'system.listMethods',
  'session.slave_local_login_with_password',
]);

export async function dispatch(
  pool: Pool,
  method: string,
  params: XmlRpcValue[],
): Promise<XmlRpcValue> {
  if (method === 'system.listMethods')
    return [
      ...METHODS.keys(),
      'session.login_with_password',
      'session.logout',
      // As xapi, Async variants only for calls that act, not for field getters.
      ...[...METHODS.keys()].filter((k) => !/\.get_/.test(k)).map((k) => `Async.${k}`),
    ];
  if (method === 'session.login_with_password')
    return pool.login(String(params[0] ?? ''), String(params[1] ?? ''));
  pool.checkSession(params[0]);
  const args = params.slice(1);
  if (method === 'session.logout') {
    pool.logout(params[0] as string);
    return '';
  }
  if (method === 'session.get_this_host') return pool.pool()[1].master as string;
  if (method.startsWith('Async.')) {
    const inner = method.slice(6);
    const h = METHODS.get(inner);
    if (!h) throw new Failure('MESSAGE_METHOD_UNKNOWN', [method]);
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
  const h = METHODS.get(method);
  if (h) return h(pool, args);
  const get = /^([A-Za-z_]+)\.get_([A-Za-z_]+)$/.exec(method);
  if (get && CLASSES.includes(get[1]!)) {
    const r = pool.rec(get[1]!, args[0]);
    if (get[2]! in r) return r[get[2]!] as XmlRpcValue;
  }
  if (NO_SESSION.has(method)) return '';
  throw new Failure('MESSAGE_METHOD_UNKNOWN', [method]);
}
