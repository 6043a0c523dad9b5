// Child for shared.test.ts: appends COUNT events, one append each, to its own stream of a shared
// log, through the built package, then prints "done".
import { SharedLevelEventStore } from '../dist/index.js';

const [dir, name, count] = process.argv.slice(2);
const store = new SharedLevelEventStore(dir, { waitMs: 120_000 });
process.stdout.write('ready\n');
for (let i = 0; i < Number(count); i++)
  await store.appendToStream(
    `run-${name}`,
    [{ type: 'Step', data: { i }, id: `${name}-${i}`, metadata: { pid: process.pid } }],
    { expectedVersion: i === 0 ? 'no_stream' : i - 1 },
  );
await store.close();
process.stdout.write('done\n');
