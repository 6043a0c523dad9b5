import { poolPortSuite } from '@xsmeta/core/test-support';
import { connect } from '../src/adapters/xapi-connection.js';
import { XapiPool } from '../src/adapters/xapi-pool.js';
import { resolveSettings } from '../src/config.js';
import { pool } from './support.js';

// The CLI's adapter over xapi, against the simulated pool (a fresh one per case).
poolPortSuite("the CLI's XapiPool against the simulator", async () => {
  const p = await pool({ vms: 4, srs: 2 });
  const s = resolveSettings({}, p.env);
  const xapi = await connect(s);
  return {
    pool: new XapiPool(xapi, s),
    async close() {
      await xapi.logout().catch(() => {});
      await p.close();
    },
  };
});
