import { describe, expect, it } from 'vitest';
import {
  firstTarMember,
  isXapiError,
  readOva,
  splitExport,
  tarOne,
  writeOva,
} from '../src/index.js';

const enc = new TextEncoder();

/** A one-member tar as xapi's handler writes it (ova.xml first). */
function tar(name: string, text: string): Uint8Array {
  const data = enc.encode(text);
  const h = new Uint8Array(512);
  h.set(enc.encode(name), 0);
  h.set(enc.encode(`${data.length.toString(8).padStart(11, '0')}\0`), 124);
  const out = new Uint8Array(512 + Math.ceil(data.length / 512) * 512 + 1024);
  out.set(h);
  out.set(data, 512);
  return out;
}

const member = (k: string, v: string) => `<member><name>${k}</name>${v}</member>`;
const obj = (cls: string, id: string, fields: string) =>
  `<value><struct>${member('class', `<value>${cls}</value>`)}${member('id', `<value>${id}</value>`)}${member('snapshot', `<value><struct>${fields}</struct></value>`)}</struct></value>`;
const s = (v: string) => `<value>${v}</value>`;
const arr = (...v: string[]) => `<value><array><data>${v.map(s).join('')}</data></array></value>`;

const xml = `<?xml version="1.0"?><value><struct>${member('version', `<value><struct>${member('export_vsn', s('2'))}</struct></value>`)}${member(
  'objects',
  `<value><array><data>${[
    obj(
      'VM',
      'Ref:0',
      member('uuid', s('vm-a')) +
        member('VIFs', arr('Ref:2')) +
        member('VBDs', arr()) +
        member('HVM_shadow_multiplier', '<value><double>1</double></value>') +
        member('affinity', s('Ref:99')) +
        member('memory_static_max', s('4294967296')),
    ),
    obj(
      'VM',
      'Ref:1',
      member('uuid', s('vm-b')) + member('VIFs', arr('Ref:3')) + member('VBDs', arr()),
    ),
    obj(
      'VIF',
      'Ref:2',
      member('uuid', s('vif-a')) + member('network', s('Ref:4')) + member('VM', s('Ref:0')),
    ),
    obj(
      'VIF',
      'Ref:3',
      member('uuid', s('vif-b')) + member('network', s('Ref:4')) + member('VM', s('Ref:1')),
    ),
    obj(
      'network',
      'Ref:4',
      member('uuid', s('net')) +
        member('name_label', s('LAN')) +
        member('bridge', s('xenbr0')) +
        member('VIFs', arr('Ref:2', 'Ref:3')),
    ),
  ].join('')}</data></array></value>`,
)}</struct></value>`;

describe('metadata export format (ocaml/xapi/export.ml)', () => {
  it('reads and writes an export keeping doubles doubles', () => {
    const ova = readOva(tar('ova.xml', xml));
    expect(ova.objects.map((o) => o.id)).toEqual(['Ref:0', 'Ref:1', 'Ref:2', 'Ref:3', 'Ref:4']);
    const back = new TextDecoder().decode(writeOva(ova));
    expect(back).toContain(
      '<member><name>HVM_shadow_multiplier</name><value><double>1</double></value></member>',
    );
    expect(readOva(writeOva(ova))).toEqual(ova);
  });

  it('refuses a tar whose first member is not ova.xml (import.ml requires it first)', () => {
    let err: unknown;
    try {
      readOva(tar('other.txt', xml));
    } catch (e) {
      err = e;
    }
    expect(isXapiError(err, 'XAPI_PROTOCOL')).toBe(true);
  });

  it('reads the first tar member tarOne writes; none in end blocks; a bad size is XAPI_PROTOCOL', () => {
    const t = tarOne('ova.xml', enc.encode('<value/>'));
    const m = firstTarMember(t)!;
    expect([m.name, new TextDecoder().decode(m.data)]).toEqual(['ova.xml', '<value/>']);
    expect(firstTarMember(new Uint8Array(1024))).toBeNull();
    expect(firstTarMember(t.subarray(0, 100))).toBeNull();
    const past = tar('ova.xml', 'x'.repeat(10)).subarray(0, 512 + 5);
    const blank = tarOne('ova.xml', enc.encode('x'));
    blank.fill(0, 124, 136);
    for (const bad of [past, blank]) {
      let err: unknown;
      try {
        firstTarMember(bad);
      } catch (e) {
        err = e;
      }
      expect(isXapiError(err, 'XAPI_PROTOCOL')).toBe(true);
    }
  });

  it('splits an all=true export: each VM with what it references, lists filtered, dangling refs NULL', () => {
    const parts = splitExport(readOva(tar('ova.xml', xml)));
    expect([...parts.keys()]).toEqual(['vm-a', 'vm-b']);
    const a = parts.get('vm-a')!;
    expect(a.objects.map((o) => o.id)).toEqual(['Ref:0', 'Ref:2', 'Ref:4']);
    expect(a.objects.find((o) => o.class === 'network')!.snapshot.VIFs).toEqual(['Ref:2']);
    expect(a.objects[0]!.snapshot.affinity).toBe('OpaqueRef:NULL');
    expect(parts.get('vm-b')!.objects.find((o) => o.class === 'network')!.snapshot.VIFs).toEqual([
      'Ref:3',
    ]);
    expect([...splitExport(readOva(tar('ova.xml', xml)), ['vm-b']).keys()]).toEqual(['vm-b']);
  });
});
