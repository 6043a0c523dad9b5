import { historyProjection, rebuild } from '@xsmeta/core';
import { Command } from 'commander';
import { openEvents } from '../runtime.js';
import { type Declare, settingsOf, withConnection } from './options.js';

/** `xsmeta history`: the recorded events. */
export const historyCommand: Declare = (ctx) =>
  withConnection(
    new Command('history')
      .description('show the recorded events (backups, restores, schedule changes)')
      .option('--json', 'print the events as one JSON document'),
  ).action(async (o: { json?: true }) => {
    const store = await openEvents(settingsOf(o).stateDir);
    try {
      const h = await rebuild(store, historyProjection);
      if (o.json) ctx.io.out(JSON.stringify(h));
      else
        for (const e of h)
          ctx.io.out(`${e.position}\t${e.at}\t${e.stream}\t${e.type}\t${JSON.stringify(e.data)}`);
    } finally {
      await store.close();
    }
    ctx.exit(0);
  });
