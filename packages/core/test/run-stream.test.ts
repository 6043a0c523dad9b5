import { describe, expect, it } from 'vitest';
import { runStream } from '../src/app/handle.js';
import {
  type AppendResult,
  type EventStore,
  MemoryEventStore,
  restoreDecider,
} from '../src/index.js';

/** A store whose appends are held until released, one by one, counting the events of each. */
function gated(inner: MemoryEventStore) {
  const appends: number[] = [];
  const gates: (() => void)[] = [];
  const store: EventStore = {
    readAll: (o) => inner.readAll(o),
    readStream: (s, o) => inner.readStream(s, o),
    subscribe: (p, h) => inner.subscribe(p, h),
    close: () => inner.close(),
    async appendToStream(s, evs, o): Promise<AppendResult> {
      appends.push(evs.length);
      await new Promise<void>((r) => gates.push(r));
      return inner.appendToStream(s, evs, o);
    },
  };
  const open = async () => {
    while (gates.length === 0) await new Promise((r) => setImmediate(r));
    gates.shift()!();
  };
  return { store, appends, open };
}

const vm = (i: number) => ({
  type: 'RecordVmRestored' as const,
  data: { runId: 'r', vmUuid: `vm-${i}`, name: `vm${i}`, isTemplate: false, dryRun: false },
});
const start = {
  type: 'RequestRestore' as const,
  data: {
    runId: 'r',
    poolUuid: 'p',
    srUuid: 'sr',
    vdiUuid: 'vdi',
    date: 'd',
    seq: 1,
    mode: 'all' as const,
    dryRun: false,
    force: false,
    legacy: false,
    formatVersion: 1,
  },
};

describe('runStream: group commit', () => {
  it('commands called while an append is written go together in the next single append; each resolves once its own events are stored', async () => {
    const inner = new MemoryEventStore();
    const g = gated(inner);
    const rec = runStream(g.store, 'restore-r', restoreDecider, { runId: 'r' });
    const first = rec.exec(start);
    const settled: string[] = [];
    const rest = [1, 2, 3, 4].map((i) =>
      rec.exec(vm(i)).then((evs) => {
        settled.push(`vm-${i}`);
        return evs;
      }),
    );
    await g.open();
    await first;
    // The four arrived while the first append was in flight: none is stored, none resolved.
    expect(settled).toEqual([]);
    await g.open();
    const evs = await Promise.all(rest);
    expect(g.appends).toEqual([1, 4]);
    expect(evs.map((e) => (e[0]!.data as { vmUuid: string }).vmUuid)).toEqual([
      'vm-1',
      'vm-2',
      'vm-3',
      'vm-4',
    ]);
    const stored: string[] = [];
    for await (const e of inner.readStream('restore-r')) stored.push(e.type);
    expect(stored).toEqual(['RestoreRequested', ...Array(4).fill('VmRestored')]);
    expect(rec.state().restored).toBe(4);
  });

  it("one command's domain error rejects that call only; the rest of its group is stored", async () => {
    const inner = new MemoryEventStore();
    const g = gated(inner);
    const rec = runStream(g.store, 'restore-r', restoreDecider, { runId: 'r' });
    const first = rec.exec(start);
    const again = rec.exec(start); // already started: RUN_ALREADY_STARTED
    const ok = rec.exec(vm(1));
    await g.open();
    await first;
    await g.open();
    await expect(again).rejects.toMatchObject({ code: 'RUN_ALREADY_STARTED' });
    expect(await ok).toHaveLength(1);
    expect(g.appends).toEqual([1, 1]);
  });

  it('a version conflict reads the stream again and decides the whole group anew', async () => {
    const inner = new MemoryEventStore();
    const g = gated(inner);
    const rec = runStream(g.store, 'restore-r', restoreDecider, { runId: 'r' });
    const first = rec.exec(start);
    const a = rec.exec(vm(1));
    const b = rec.exec(vm(2));
    await g.open();
    await first;
    // Another writer appends meanwhile: the group's append conflicts, then goes again.
    await inner.appendToStream('restore-r', [{ type: 'VmRestored', data: vm(9).data }]);
    await g.open();
    await g.open();
    await Promise.all([a, b]);
    expect(g.appends).toEqual([1, 2, 2]);
    expect(rec.state().restored).toBe(3);
  });

  it('a store error rejects every call of the group; the next group decides on the last stored state', async () => {
    const inner = new MemoryEventStore();
    let fail = false;
    const store: EventStore = {
      readAll: (o) => inner.readAll(o),
      readStream: (s, o) => inner.readStream(s, o),
      subscribe: (p, h) => inner.subscribe(p, h),
      close: () => inner.close(),
      appendToStream: (s, evs, o) =>
        fail ? Promise.reject(new Error('disk full')) : inner.appendToStream(s, evs, o),
    };
    const rec = runStream(store, 'restore-r', restoreDecider, { runId: 'r' });
    await rec.exec(start);
    fail = true;
    const both = [rec.exec(vm(1)), rec.exec(vm(2))];
    for (const p of both) await expect(p).rejects.toThrow('disk full');
    fail = false;
    await rec.exec(vm(3));
    expect(rec.state().restored).toBe(1);
  });
});
