import { describe, expect, it } from 'vitest';
import { backupVdiUuid, uuidV5, XapiError } from '../src/index.js';

describe('backupVdiUuid', () => {
  it('matches the vectors xapi derives', () => {
    expect(backupVdiUuid('00000000-0000-0000-0000-000000000000')).toBe(
      '581017e4-81dd-5c81-adf6-59e789731929',
    );
    expect(backupVdiUuid('f1c3a1b2-1234-4abc-8def-0123456789ab')).toBe(
      '3faa6288-a533-5509-9972-d30f22a8f041',
    );
  });

  it('is a version-5 RFC 4122 uuid', () => {
    expect(backupVdiUuid('x')).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });

  it('matches the RFC 4122 DNS example (python uuid5(NAMESPACE_DNS, "python.org"))', () => {
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'python.org')).toBe(
      '886313e1-3b8a-5372-9b90-0c9aee199e5d',
    );
  });

  it('rejects a namespace that is not a uuid', () => {
    expect(() => uuidV5('nope', 'x')).toThrow(XapiError);
  });
});
