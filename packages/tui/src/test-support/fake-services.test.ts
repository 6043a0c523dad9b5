import { consoleServicesSuite } from './console-services-suite.js';
import { FakeConsoleServices } from './fake-services.js';

// The fake honours the whole contract: aborts stop a run between steps, progress is live.
consoleServicesSuite(
  'FakeConsoleServices',
  { stopsMidRun: true, liveProgress: true },
  async () => ({
    services: new FakeConsoleServices(),
    close: async () => {},
  }),
);
