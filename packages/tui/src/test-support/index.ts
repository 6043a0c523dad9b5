/** Test support for the console and for implementors of its port (source condition only). */
export {
  type ConsoleServicesCapabilities,
  type ConsoleServicesUnderTest,
  consoleServicesSuite,
} from './console-services-suite.js';
export { FakeConsoleServices } from './fake-services.js';
