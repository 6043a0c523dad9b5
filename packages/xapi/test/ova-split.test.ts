import { describe, expect, it } from 'vitest';
import { type Ova, readOva, splitExport, tarOne, writeOva } from '../src/ova.js';
import { ExportSplitter, splitExportTar } from '../src/ova-split.js';

const NULL = 'OpaqueRef:NULL';
const enc = new TextEncoder();
const dec = new TextDecoder();

/** An all=true export with every kind of object the split follows, and some it does not. */
function pool(): Ova {
  const objects: Ova['objects'] = [];
  const o = (cls: string, id: string, snapshot: Record<string, unknown>) =>
    objects.push({ class: cls, id, snapshot: snapshot as Ova['objects'][number]['snapshot'] });
  o('host', 'Ref:h', {
    uuid: 'host',
    resident_VMs: ['Ref:v0', 'Ref:v2'],
    crash_dump_sr: 'Ref:sr0',
    suspend_image_sr: 'Ref:sr9',
    other_config: {},
  });
  for (let i = 0; i < 4; i++)
    o('VM', `Ref:v${i}`, {
      uuid: `vm-${i}`,
      name_label: `vm <${i}> & "q" é`,
      power_state: i === 1 ? 'Suspended' : i === 0 ? 'Running' : 'Halted',
      suspend_VDI: i === 1 ? 'Ref:sus' : NULL,
      VIFs: [`Ref:vif${i}`],
      VBDs: [`Ref:vbd${i}a`, `Ref:vbd${i}b`],
      VGPUs: i === 2 ? ['Ref:vgpu'] : [],
      VTPMs: i === 3 ? ['Ref:vtpm'] : [],
      metrics: `Ref:m${i}`,
      guest_metrics: i === 0 ? 'Ref:gm0' : NULL,
      resident_on: i === 0 || i === 2 ? 'Ref:h' : NULL,
      affinity: i === 3 ? 'Ref:h' : 'Ref:gone',
      snapshot_of: NULL,
      parent: 'Ref:gone',
      HVM_shadow_multiplier: `\uE000double:1.0`,
      other_config: { a: '', 'b c': 'd\te' },
      tags: [],
      blobs: {},
      memory_static_max: '4294967296',
    });
  for (let i = 0; i < 4; i++) {
    o('VM_metrics', `Ref:m${i}`, { uuid: `m-${i}`, VCPUs_number: 2 });
    o('VBD', `Ref:vbd${i}a`, {
      uuid: `vbd-${i}a`,
      VM: `Ref:v${i}`,
      VDI: `Ref:vdi${i}`,
      empty: false,
    });
    o('VBD', `Ref:vbd${i}b`, { uuid: `vbd-${i}b`, VM: `Ref:v${i}`, VDI: NULL, empty: true });
    o('VIF', `Ref:vif${i}`, { uuid: `vif-${i}`, VM: `Ref:v${i}`, network: `Ref:net${i % 2}` });
  }
  o('VM_guest_metrics', 'Ref:gm0', { uuid: 'gm-0', os_version: {} });
  // A shared object's list longer than what one VM's export keeps (as in a large pool).
  const others = Array.from({ length: 40 }, (_, k) => `Ref:elsewhere${k}`);
  o('network', 'Ref:net0', {
    uuid: 'net0',
    VIFs: ['Ref:vif2', ...others, 'Ref:vif0'],
    bridge: 'xenbr0',
  });
  o('network', 'Ref:net1', { uuid: 'net1', VIFs: ['Ref:vif1', 'Ref:vif3'], bridge: 'xenbr1' });
  for (let i = 0; i < 4; i++)
    o('VDI', `Ref:vdi${i}`, { uuid: `vdi-${i}`, SR: `Ref:sr${i % 2}`, VBDs: [`Ref:vbd${i}a`] });
  o('VDI', 'Ref:sus', { uuid: 'sus', SR: 'Ref:sr1', VBDs: [] });
  o('SR', 'Ref:sr0', { uuid: 'sr0', VDIs: ['Ref:vdi0', 'Ref:vdi2'] });
  o('SR', 'Ref:sr1', { uuid: 'sr1', VDIs: ['Ref:vdi1', 'Ref:vdi3', 'Ref:sus'] });
  o('GPU_group', 'Ref:gg', { uuid: 'gg', VGPUs: ['Ref:vgpu'] });
  o('VGPU_type', 'Ref:vt', { uuid: 'vt' });
  o('VGPU', 'Ref:vgpu', { uuid: 'vgpu', VM: 'Ref:v2', GPU_group: 'Ref:gg', type: 'Ref:vt' });
  o('PVS_site', 'Ref:site', { uuid: 'site', proxies: ['Ref:px'] });
  o('PVS_proxy', 'Ref:px', { uuid: 'px', VIF: 'Ref:vif1', site: 'Ref:site' });
  o('VTPM', 'Ref:vtpm', { uuid: 'vtpm', VM: 'Ref:v3' });
  return { version: { export_vsn: 2, hostname: 'h' }, objects };
}

/** The same export with white space between tags, as another writer might lay it out. */
function spaced(tar: Uint8Array): Uint8Array {
  const size = Number.parseInt(dec.decode(tar.subarray(124, 136)).replace(/\0.*$/s, ''), 8);
  const xml = dec.decode(tar.subarray(512, 512 + size));
  return tarOne(
    'ova.xml',
    enc.encode(xml.replace(/(<struct>|<\/member>|<data>|<array>)/g, '$1\n  ')),
  );
}

describe('splitExportTar (the split on the export text)', () => {
  for (const [what, tar] of [
    ['as our writer lays it out', writeOva(pool())],
    ['with white space between tags', spaced(writeOva(pool()))],
  ] as const)
    it(`gives for each VM what splitExport gives, ${what}`, () => {
      const want = splitExport(readOva(tar));
      const got = splitExportTar(tar);
      expect([...got.keys()]).toEqual([...want.keys()]);
      for (const [uuid, build] of got) {
        const mine = readOva(build());
        expect(mine).toEqual(readOva(writeOva(want.get(uuid)!)));
      }
      // Asked for some VMs only.
      expect([...splitExportTar(tar, ['vm-3', 'vm-1']).keys()]).toEqual(['vm-1', 'vm-3']);
    });

  it('gives the same fed chunk by chunk (any cut), reading the objects back by offset', () => {
    const tar = spaced(writeOva(pool()));
    const whole = splitExportTar(tar);
    // Scanned at every chunk (objects cut anywhere, read again) and gathered (the default).
    for (const [size, batchBytes] of [7, 100, 511, 513, 4096].flatMap(
      (n): [number, number | undefined][] => [
        [n, 1],
        [n, undefined],
      ],
    )) {
      const s = new ExportSplitter(['vm-0', 'vm-1', 'vm-2', 'vm-3'], { batchBytes });
      for (let i = 0; i < tar.length; i += size) s.push(tar.slice(i, i + size));
      const reads: number[] = [];
      const got = s.finish((offset, length) => {
        reads.push(length);
        return tar.subarray(offset, offset + length);
      });
      expect([...got.keys()], `chunks of ${size}, batch ${batchBytes}`).toEqual([...whole.keys()]);
      for (const [uuid, build] of got) expect(build()).toEqual(whole.get(uuid)!());
      // Object by object, never the whole export.
      expect(Math.max(...reads)).toBeLessThan(tar.length / 4);
    }
  });

  it('refuses an export that ends early with XAPI_PROTOCOL', () => {
    const tar = writeOva(pool());
    const size = Number.parseInt(dec.decode(tar.subarray(124, 136)).replace(/\0.*$/s, ''), 8);
    for (const cut of [100, 600, 512 + Math.floor(size / 2), 512 + size - 3]) {
      const s = new ExportSplitter();
      s.push(tar.subarray(0, cut));
      expect(() => s.finish((o, l) => tar.subarray(o, o + l)), `cut at ${cut}`).toThrow(
        expect.objectContaining({ code: 'XAPI_PROTOCOL' }),
      );
    }
  });

  it('keeps the text of what it does not change (doubles stay doubles)', () => {
    const text = dec.decode(splitExportTar(writeOva(pool())).get('vm-0')!());
    expect(text).toContain(
      '<member><name>HVM_shadow_multiplier</name><value><double>1.0</double></value></member>',
    );
  });

  it('refuses what is not an export with XAPI_PROTOCOL', () => {
    for (const xml of [
      '<value><struct><member><name>objects</name>',
      '<value><array><data></data></array></value>',
      'no xml',
    ])
      expect(() => splitExportTar(tarOne('ova.xml', enc.encode(xml)))).toThrow(
        expect.objectContaining({ code: 'XAPI_PROTOCOL' }),
      );
  });
});
