import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { elfNeeds, unfitForTarget } from '../src/elf.js';

const dir = mkdtempSync(join(tmpdir(), 'xsmeta-elf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A file with an ELF header for `machine` whose string table names `versions`. */
function fakeElf(name: string, machine: number, versions: string[]): string {
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header.writeUInt16LE(machine, 18);
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([header, Buffer.from(`\0${versions.join('\0')}\0`, 'latin1')]));
  return path;
}

describe('what a native binary needs', () => {
  it('reads the newest glibc version it names, as objdump -T lists them', () => {
    const f = fakeElf('a.node', 62, ['GLIBC_2.2.5', 'GLIBC_2.28', 'GLIBC_2.14', 'GLIBCXX_3.4.21']);
    expect(elfNeeds(f)).toEqual({ machine: 62, glibc: [2, 28], glibcxx: [3, 4, 21] });
    expect(unfitForTarget(f)).toBeNull();
  });

  it('finds a binary unfit for glibc 2.28 or for x86-64', () => {
    expect(unfitForTarget(fakeElf('new.node', 62, ['GLIBC_2.17', 'GLIBC_2.34']))).toMatch(
      /needs glibc 2\.34, newer than the target's 2\.28/,
    );
    expect(unfitForTarget(fakeElf('cxx.node', 62, ['GLIBC_2.17', 'GLIBCXX_3.4.30']))).toMatch(
      /needs libstdc\+\+ GLIBCXX_3\.4\.30/,
    );
    expect(unfitForTarget(fakeElf('arm.node', 183, ['GLIBC_2.17']))).toMatch(/not an x86-64/);
    const text = join(dir, 'not-elf');
    writeFileSync(text, '#!/bin/sh\n');
    expect(() => elfNeeds(text)).toThrow(/not an ELF file/);
  });
});
