// What makes the simulator save its state (pool.json): only what xapi writes to its database
// file. Sessions and tasks are `~persist:PersistNothing` (ocaml/idl/datamodel.ml), and an
// object's current and allowed operations `~persist:false` (ocaml/idl/datamodel_common.ml), so a
// metadata export, which locks every VM it exports and unlocks them after, saves nothing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { exportMetadataRequest } from '../src/metadata-export.js';
import { Db } from '../src/model.js';
import { Pool } from '../src/pool.js';
import { seedPool } from '../src/seed.js';

function seeded(): Pool {
  const db = new Db();
  seedPool(db, { vms: 5, srs: 1, seed: 3 });
  db.dirty = false;
  return new Pool('/nonexistent', 'pw', db);
}

describe('the simulator saves what xapi persists', () => {
  it('an export of every VM (lock and unlock of each) leaves nothing to save', () => {
    const pool = seeded();
    const task = pool.db.add('task', { uuid: 't', status: 'pending' });
    const tar = exportMetadataRequest(pool, new URLSearchParams('all=true'), task);
    expect(tar.length).toBeGreaterThan(1024);
    expect(pool.db.dirty).toBe(false);
  });

  it('a change of a persistent field is saved; of current_operations alone, or of a task, not', () => {
    const pool = seeded();
    const [ref] = [...pool.db.table('VM').keys()];
    pool.db.mod('VM', ref!, { current_operations: { 'OpaqueRef:x': 'clean_shutdown' } });
    pool.db.mod('VM', ref!, { allowed_operations: [] });
    pool.db.add('session', { uuid: 's' });
    expect(pool.db.dirty).toBe(false);
    pool.db.mod('VM', ref!, { current_operations: {}, name_label: 'renamed' });
    expect(pool.db.dirty).toBe(true);
  });
});

describe('the simulator saves when the pool is quiet', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('half a second after the last request, and at most 5 s after a change however busy', () => {
    vi.useFakeTimers();
    const pool = seeded();
    const saves = vi.spyOn(pool, 'save').mockImplementation(() => {
      pool.db.dirty = false;
    });
    const [ref] = [...pool.db.table('VM').keys()];
    pool.db.mod('VM', ref!, { name_label: 'changed' });
    // A request every 100 ms for 2 s: no save while they come.
    for (let t = 0; t < 2000; t += 100) {
      pool.scheduleSave();
      vi.advanceTimersByTime(100);
    }
    // The last request was 100 ms ago.
    expect(saves).not.toHaveBeenCalled();
    vi.advanceTimersByTime(399);
    expect(saves).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(saves).toHaveBeenCalledTimes(1);
    // Busy without a pause: saved 5 s after the change all the same.
    pool.db.mod('VM', ref!, { name_label: 'again' });
    for (let t = 0; t < 6000; t += 100) {
      pool.scheduleSave();
      vi.advanceTimersByTime(100);
    }
    expect(saves).toHaveBeenCalledTimes(2);
  });
});
