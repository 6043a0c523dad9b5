export {
  type FaultControl,
  type FaultOptions,
  type Simulator,
  type SimulatorOptions,
  startSimulator,
} from './server.js';
