import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { consoleServicesSuite } from '@xsmeta/tui/test-support';
import { connectionFlags, resolveSettings } from '../src/config.js';
import { consoleServices } from '../src/console.js';
import { pool } from './support.js';

// The CLI's adapter over the real pool (the simulator), ring and event store: it honours the
// whole contract (Stop mid-run, live progress), as the fake does.
consoleServicesSuite(
  "the CLI's consoleServices against the simulator",
  { stopsMidRun: true, liveProgress: true },
  async () => {
    const p = await pool({ vms: 4, srs: 2 });
    const cron = await mkdtemp(join(tmpdir(), 'xsmeta-cron-'));
    const saved = { ...process.env };
    Object.assign(process.env, p.env, { XSMETA_CRON_DIR: cron });
    const services = consoleServices(resolveSettings(connectionFlags({})));
    return {
      services,
      async close() {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
        await p.close();
        await rm(cron, { recursive: true, force: true });
      },
    };
  },
);
