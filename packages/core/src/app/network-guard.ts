import type { NetworkKey } from './ports.js';

/**
 * Keeps two imports from creating the same network. xapi's import looks a network up by
 * name_label, then by bridge, and creates it when neither matches, with no lock between the
 * look-up and the create (module Net in ocaml/xapi/import.ml): parallel imports that need the
 * same missing network each create one. So an import whose export refers to a network that
 * is neither in the pool nor created by an earlier import of this run waits for its turn
 * among such imports, one at a time, in the order they reach the guard; when its turn comes,
 * a network an earlier import created meanwhile no longer counts as missing (a VM left with
 * nothing to create goes at once). A failed import creates nothing: the next VM that needs its
 * networks creates them in its turn. Imports that need nothing missing run freely, beside them.
 */
export class NetworkGuard {
  private readonly names: Set<string>;
  private readonly bridges: Set<string>;
  /** Keys (`name:…`, `bridge:…`) of the networks imports of this run have created. */
  private readonly created = new Set<string>();
  private turn: Promise<void> = Promise.resolve();

  constructor(
    present: readonly NetworkKey[],
    private readonly networksOf: (body: Uint8Array) => NetworkKey[],
  ) {
    this.names = new Set(present.map((n) => n.name));
    this.bridges = new Set(present.map((n) => n.bridge));
  }

  /** The keys of the networks `body` refers to that the pool lacked (a name and a bridge each). */
  private lacking(body: Uint8Array): string[] {
    let nets: NetworkKey[];
    try {
      nets = this.networksOf(body);
    } catch {
      return []; // the import itself reports what is wrong with the export
    }
    const keys: string[] = [];
    for (const n of nets) {
      if (this.names.has(n.name) || (n.bridge !== '' && this.bridges.has(n.bridge))) continue;
      keys.push(`name:${n.name}`);
      if (n.bridge !== '') keys.push(`bridge:${n.bridge}`);
    }
    return keys;
  }

  /** Runs `run` (the import of `body`; true when it succeeded) under the rule above. */
  async around<T>(body: Uint8Array, run: () => Promise<T>, ok: (t: T) => boolean): Promise<T> {
    const keys = this.lacking(body);
    const missing = () => keys.filter((k) => !this.created.has(k));
    if (missing().length === 0) return run();
    const before = this.turn;
    let done = () => {};
    this.turn = new Promise<void>((r) => {
      done = r;
    });
    try {
      await before;
      const mine = missing();
      if (mine.length === 0) {
        done();
        return await run();
      }
      const out = await run();
      if (ok(out)) for (const k of mine) this.created.add(k);
      return out;
    } finally {
      done();
    }
  }
}
