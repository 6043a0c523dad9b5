import { expect, it } from 'vitest';
import * as api from '../src/index.js';

// The CLI, the simulator, the benches and the demo import these names from '@xsmeta/xapi':
// moving code between the package's files must not drop one.
it('the package still exports every value its callers import', () => {
  expect(Object.keys(api)).toEqual(
    expect.arrayContaining([
      'XapiClient',
      'XapiError',
      'isXapiError',
      'parseTaskResult',
      'INT_FIELDS',
      'NULL_REF',
      'backupVdiUuid',
      'uuidV5',
      'POOL_METADATA_BACKUP_NAMESPACE',
      'readOva',
      'writeOva',
      'splitExport',
      'ovaNetworks',
      'tarOne',
      'decodeVhd',
      'encodeVhd',
      'VHD_BLOCK',
      'VHD_SECTOR',
      'VhdError',
      'encodeValue',
      'decodeValue',
      'encodeMethodCall',
      'decodeMethodCall',
      'encodeMethodResponse',
      'decodeMethodResponse',
      'encodeFault',
      'escapeXml',
      'formatXapiDate',
      'parseXapiDate',
      'isStruct',
    ]),
  );
});

it('XapiClient keeps its methods and accessors', () => {
  const proto = api.XapiClient.prototype;
  const methods = [
    'call',
    'callAsync',
    'waitTask',
    'getAllRecords',
    'getRecord',
    'exportMetadata',
    'importMetadata',
    'dumpDatabase',
    'dumpDatabaseStream',
    'restoreDatabase',
    'exportRawVdi',
    'importRawVdi',
    'logout',
  ];
  for (const m of methods) expect(typeof Reflect.get(proto, m), m).toBe('function');
  for (const g of ['sessionRef', 'url', 'socketPath', 'transport']) {
    expect(typeof Object.getOwnPropertyDescriptor(proto, g)?.get, g).toBe('function');
  }
  expect(typeof api.XapiClient.connect).toBe('function');
});
