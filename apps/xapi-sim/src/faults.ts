import { Failure } from './errors.js';

/** Fault knobs (documented in the README). */
export interface FaultOptions {
  /** Delay before answering every RPC call and handler, ms. */
  latencyMs?: number;
  /** Fail calls whose method (or handler path) matches: after `after` matching calls pass, `times` fail. */
  fail?: { match: string; code: string; params?: string[]; after?: number; times?: number }[];
  /** Destroy the socket of matching requests instead of answering. */
  drop?: { match: string; after?: number; times?: number }[];
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
  private hit(rule: { match: string; after?: number; times?: number }, name: string): boolean {
    if (!matches(rule.match, name)) return false;
    const c = this.counters.get(rule) ?? { seen: 0, fired: 0 };
    this.counters.set(rule, c);
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
}
