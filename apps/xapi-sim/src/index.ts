export type { FaultControl, FaultOptions } from './faults.js';
export { type Simulator, type SimulatorOptions, startSimulator } from './server.js';
