import { FakePool } from './fake-pool.js';
import { poolPortSuite } from './pool-port-suite.js';

poolPortSuite('core FakePool', async () => ({ pool: new FakePool(), close: async () => {} }));
