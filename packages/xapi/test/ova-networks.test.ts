import { describe, expect, it } from 'vitest';
import { exportNetworks, ovaNetworks, readOva, writeOva } from '../src/index.js';

const enc = new TextEncoder();

/** A one-member tar as xapi's handler writes it (ova.xml first). */
function tar(text: string): Uint8Array {
  const data = enc.encode(text);
  const h = new Uint8Array(512);
  h.set(enc.encode('ova.xml'), 0);
  h.set(enc.encode(`${data.length.toString(8).padStart(11, '0')}\0`), 124);
  const out = new Uint8Array(512 + Math.ceil(data.length / 512) * 512 + 1024);
  out.set(h);
  out.set(data, 512);
  return out;
}

const m = (k: string, v: string) => `<member><name>${k}</name>${v}</member>`;
const s = (v: string) => `<value>${v}</value>`;
const struct = (...members: string[]) => `<value><struct>${members.join('')}</struct></value>`;
const obj = (cls: string, id: string, ...fields: string[]) =>
  struct(m('class', s(cls)), m('id', s(id)), m('snapshot', struct(...fields)));
const doc = (...objects: string[]) =>
  `<?xml version="1.0"?>${struct(
    m('version', struct(m('export_vsn', s('<int>2</int>')))),
    m('objects', `<value><array><data>${objects.join('')}</data></array></value>`),
  )}`;

const slow = (t: Uint8Array) => ovaNetworks(readOva(t));

describe('exportNetworks: the networks of an export without decoding all of it', () => {
  const vm = obj(
    'VM',
    'Ref:0',
    m('uuid', s('vm-a')),
    m('VIFs', '<value><array><data><value>Ref:1</value></data></array></value>'),
  );
  const cases: [string, string][] = [
    [
      'two networks, names with escapes, a map with a class key inside a snapshot',
      doc(
        vm,
        obj(
          'network',
          'Ref:2',
          m('name_label', s('DMZ &amp; &lt;lab&gt;')),
          m('bridge', s('xapi1')),
          m('other_config', struct(m('class', s('network')))),
        ),
        obj('VIF', 'Ref:1', m('network', s('Ref:2'))),
        obj(
          'network',
          'Ref:3',
          m('name_label', s('Pool-wide network associated with eth0')),
          m('bridge', s('xenbr0')),
        ),
      ),
    ],
    ['no network at all', doc(vm)],
    [
      'strings written as <string>, with whitespace between tags',
      doc(
        vm,
        `<value>\n <struct>\n  <member><name>class</name><value><string>network</string></value></member>\n  <member><name>id</name><value><string>Ref:4</string></value></member>\n  <member><name>snapshot</name><value><struct><member><name>name_label</name><value><string>backend</string></value></member></struct></value></member>\n </struct>\n</value>`,
      ),
    ],
    [
      'class not the first member (decoded whole)',
      doc(
        vm,
        struct(
          m('id', s('Ref:5')),
          m('class', s('network')),
          m('snapshot', struct(m('name_label', s('late')), m('bridge', s('xapi9')))),
        ),
      ),
    ],
  ];
  for (const [what, xml] of cases) {
    it(what, () => {
      const t = tar(xml);
      expect(exportNetworks(t)).toEqual(slow(t));
    });
  }

  it('finds what the full decoding finds in an export re-encoded as xsmeta writes them', () => {
    const t = tar(cases[0]![1]);
    expect(slow(t)).toHaveLength(2);
    const again = writeOva(readOva(t));
    expect(exportNetworks(again)).toEqual(slow(again));
  });
});
