/** Test support for implementors of vdi-store's ports (source condition only; not built). */
export {
  type BlockDeviceCapabilities,
  type BlockDeviceFactory,
  blockDeviceSuite,
  type ReadableDevice,
} from './block-device-suite.js';
