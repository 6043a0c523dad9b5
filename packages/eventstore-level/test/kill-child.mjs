// Child for kill.test.ts: appends batches of 50 events forever through the built store, and
// prints a line after each (the parent kills it after a chosen number, mid-way through the next).
import { ClassicLevel } from 'classic-level';
import { LevelEventStore } from '../dist/index.js';

const db = new ClassicLevel(process.argv[2], { keyEncoding: 'utf8', valueEncoding: 'view' });
const store = await LevelEventStore.open(db);
process.stdout.write('ready\n');
for (let i = 0; ; i++) {
  const events = Array.from({ length: 50 }, (_, k) => ({
    type: 'BackupPartsCaptured',
    data: { runId: `b${i}`, vmCount: k, templateCount: 0, rawBytes: 0 },
  }));
  await store.appendToStream(`batch-${i}`, events, { expectedVersion: 'no_stream' });
  process.stdout.write(`appended ${i}\n`);
}
