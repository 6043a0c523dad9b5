import { Failure } from './errors.js';

/** Fault knobs (documented in the README). */
export interface FaultOptions {
  /** Delay before answering every RPC call and handler, ms. */
  latencyMs?: number;
  /** Fail calls whose method (or handler path) matches: after `after` matching calls pass, `times` fail. */
  fail?: { match: string; code: string; params?: string[]; after?: number; times?: number }[];
  /** Destroy the socket of matching requests instead of answering. */
  drop?: { match: string; after?: number; times?: number }[];
  /**
   * VMs (uuid or ref) with an operation in progress that lasts longer than xapi's lock retry
   * (export.ml `lock_vm`): a metadata export of them is refused with OTHER_OPERATION_IN_PROGRESS.
   * `op` defaults to `clean_shutdown`.
   */
  busy?: { vm: string; op?: string }[];
  /**
   * Cut the body of a streamed handler (only `GET /pool/xmldbdump` streams) after `afterBytes`
   * bytes: the connection is closed and the task fails, as a real mid-stream failure does.
   */
  cut?: { match: string; afterBytes: number; after?: number; times?: number }[];
  /** The host is in emergency mode: every RPC but the emergency calls answers HOST_STILL_BOOTING. */
  emergency?: boolean;
  /**
   * Make dom0 `VBD.unplug` (and so `VBD.unplug_force`, the same call there) fail; the VBD
   * stays plugged. Default error: DEVICE_DETACH_REJECTED [VBD, ref, msg].
   */
  unplugFail?: { code?: string; params?: string[]; after?: number; times?: number };
  /**
   * Hold each metadata import between its network lookup and its network creation until
   * `count` imports are there (or `timeoutMs`, default 2000, passed): what two imports racing
   * on a real pool do, made deterministic for tests (import.ml has no lock there).
   */
  importBarrier?: { count: number; timeoutMs?: number };
}

export interface FaultControl {
  set(f: FaultOptions): void;
  clear(): void;
  readonly current: FaultOptions;
}

interface Counter {
  seen: number;
  fired: number;
}

function matches(pattern: string, name: string): boolean {
  return pattern === name || (pattern.endsWith('*') && name.startsWith(pattern.slice(0, -1)));
}

export class Faults implements FaultControl {
  current: FaultOptions;
  private counters = new Map<object, Counter>();
  constructor(f: FaultOptions = {}) {
    this.current = f;
  }
  set(f: FaultOptions): void {
    this.current = f;
    this.counters.clear();
  }
  clear(): void {
    this.set({});
  }
  private hit(
    rule: { match: string; after?: number; times?: number },
    name: string,
    key: object = rule,
  ): boolean {
    if (!matches(rule.match, name)) return false;
    const c = this.counters.get(key) ?? { seen: 0, fired: 0 };
    this.counters.set(key, c);
    c.seen++;
    if (c.seen <= (rule.after ?? 0)) return false;
    if (c.fired >= (rule.times ?? Number.POSITIVE_INFINITY)) return false;
    c.fired++;
    return true;
  }
  failure(name: string): Failure | null {
    for (const r of this.current.fail ?? [])
      if (this.hit(r, name)) return new Failure(r.code, r.params ?? []);
    return null;
  }
  drop(name: string): boolean {
    return (this.current.drop ?? []).some((r) => this.hit(r, name));
  }
  /** Bytes after which the body of `name` is cut, or null. */
  cutAfter(name: string): number | null {
    for (const r of this.current.cut ?? []) if (this.hit(r, name)) return r.afterBytes;
    return null;
  }
  /** The operation a busy VM is in, or null. */
  busyOp(uuid: string, ref: string): string | null {
    const b = (this.current.busy ?? []).find((x) => x.vm === uuid || x.vm === ref);
    return b ? (b.op ?? 'clean_shutdown') : null;
  }
  unplugFailure(ref: string): Failure | null {
    const r = this.current.unplugFail;
    if (!r || !this.hit({ match: '*', ...r }, 'VBD.unplug', r)) return null;
    return new Failure(
      r.code ?? 'DEVICE_DETACH_REJECTED',
      r.params ?? ['VBD', ref, 'the device is busy (injected)'],
    );
  }
}
