import { describe, expect, it } from 'vitest';
import { decodeRecordsReply } from '../src/project.js';

const tricky = {
  'OpaqueRef:1': {
    uuid: 'u-1',
    name_label: 'a "quoted" \\ name}{][,:',
    other_config: { 'k"}': 'v\\"', nested: '{"x":[1,2]}' },
    VBDs: ['OpaqueRef:b1', 'OpaqueRef:b2'],
    memory: -12.5e3,
    is_a_template: false,
    blob: null,
    tags: [],
    deep: { a: [{ b: '}' }, [[]]], c: {} },
    utf: 'caf\u00e9 \u2603 \ud83d\ude00 \\u0041',
  },
  'OpaqueRef:2': { uuid: 'u-2', name_label: '', VBDs: [] },
};

const body = (v: unknown, pretty = false) =>
  Buffer.from(pretty ? JSON.stringify(v, null, 2) : JSON.stringify(v));

function picked(fields: string[]) {
  return Object.fromEntries(
    Object.entries(tricky).map(([ref, r]) => [
      ref,
      Object.fromEntries(Object.entries(r).filter(([k]) => fields.includes(k))),
    ]),
  );
}

describe('decodeRecordsReply (get_all_records keeping some fields)', () => {
  for (const pretty of [false, true])
    it(`keeps exactly the fields asked for, decoded as JSON.parse would${pretty ? ' (white space)' : ''}`, () => {
      for (const fields of [
        ['uuid'],
        ['name_label', 'VBDs', 'missing'],
        ['other_config', 'memory', 'is_a_template', 'blob', 'tags', 'deep', 'utf'],
      ]) {
        const reply = { jsonrpc: '2.0', result: tricky, id: 7 };
        const got = decodeRecordsReply(body(reply, pretty), fields) as typeof reply;
        expect(JSON.parse(JSON.stringify(got))).toEqual({ ...reply, result: picked(fields) });
      }
    });

  it('finds a field whose key is written with escapes', () => {
    const text = '{"result":{"r":{"\\u0075uid":"x","name_label":"n"}},"id":1}';
    const got = decodeRecordsReply(Buffer.from(text), ['uuid']) as {
      result: Record<string, Record<string, string>>;
    };
    expect({ ...got.result.r }).toEqual({ uuid: 'x' });
  });

  it('decodes an error reply, and an empty map, whole', () => {
    const err = {
      jsonrpc: '2.0',
      error: { code: 1, message: 'SESSION_INVALID', data: ['x'] },
      id: 3,
    };
    expect(JSON.parse(JSON.stringify(decodeRecordsReply(body(err), ['uuid'])))).toEqual(err);
    const empty = { jsonrpc: '2.0', result: {}, id: 1 };
    expect(JSON.parse(JSON.stringify(decodeRecordsReply(body(empty), ['uuid'])))).toEqual(empty);
  });

  it('a member named __proto__ is data, not a prototype', () => {
    const text = '{"result":{"__proto__":{"uuid":"p","polluted":true}},"id":1}';
    const got = decodeRecordsReply(Buffer.from(text), ['uuid', 'polluted']) as {
      result: Record<string, { uuid: string }>;
    };
    expect(Object.keys(got.result)).toEqual(['__proto__']);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('refuses what is not JSON with XAPI_PROTOCOL', () => {
    for (const text of [
      '{"result":{"r":{"uuid":"x}}',
      '{"result":{"r":{"uuid":}},"id":1}',
      '{"result":{"r":[1]},"id":1}',
      '{"result":{"r":{"a":1}}} trailing',
      '{"result":{"r":{"a":{"b":1}},"id":1}',
    ])
      expect(() => decodeRecordsReply(Buffer.from(text), ['a', 'uuid'])).toThrow(
        expect.objectContaining({ code: 'XAPI_PROTOCOL' }),
      );
  });
});
