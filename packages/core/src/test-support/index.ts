/** Test support for implementors of core's ports (source condition only; not built). */
export { FakePool } from './fake-pool.js';
export { type PoolPortUnderTest, poolPortSuite } from './pool-port-suite.js';
