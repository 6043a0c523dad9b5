// What makes the simulator save its state (pool.json): only what xapi writes to its database
// file. Sessions and tasks are `~persist:PersistNothing` (ocaml/idl/datamodel.ml), and an
// object's current and allowed operations `~persist:false` (ocaml/idl/datamodel_common.ml), so a
// metadata export, which locks every VM it exports and unlocks them after, saves nothing.
import { describe, expect, it } from 'vitest';
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
