// event.from as the simulator serves it: an empty token gives every object as it is now and a
// token; a token gives the changes made after it, each with its object as it was then. Changes
// made before any token was handed out are not kept (no one can ask for them), which is what
// makes a metadata export's locks cheap.
import { describe, expect, it } from 'vitest';
import { Db } from '../src/model.js';

describe('event.from', () => {
  it('gives every change after its token, each object as it was then', async () => {
    const db = new Db();
    const ref = db.add('VM', { uuid: 'u', name_label: 'a' });
    db.mod('VM', ref, { name_label: 'b' }); // before any token: seen as the object now
    const first = await db.eventsFrom(['vm'], '', 0);
    expect(first.events.map((e) => e.snapshot?.name_label)).toEqual(['b']);
    db.mod('VM', ref, { name_label: 'c' });
    db.mod('VM', ref, { name_label: 'd' });
    db.add('SR', { uuid: 's' });
    const next = await db.eventsFrom(['vm'], first.token, 0);
    expect(next.events.map((e) => [e.operation, e.snapshot?.name_label])).toEqual([
      ['mod', 'c'],
      ['mod', 'd'],
    ]);
    expect(Number(next.token)).toBeGreaterThan(Number(first.token));
    const none = await db.eventsFrom(['vm'], next.token, 0);
    expect(none.events).toEqual([]);
  });
});
