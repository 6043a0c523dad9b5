import { readFileSync } from 'node:fs';

/**
 * What a native binary (a Node.js addon `.node`, or the `node` executable) asks of the machine
 * that loads it: its ELF machine and the newest glibc symbol version it links against.
 *
 * The version needs of an ELF file are named in its dynamic string table (`GLIBC_2.28`, …), the
 * same names `objdump -T` prints; scanning the bytes for them is what `strings | grep GLIBC_`
 * does, with no binutils needed on the build machine.
 */
export interface ElfNeeds {
  /** e_machine: 62 is x86-64. */
  machine: number;
  /** The newest `GLIBC_x.y[.z]` version named, e.g. [2, 28]; null when none (static, or musl). */
  glibc: number[] | null;
  /** The newest `GLIBCXX_3.4.n` (libstdc++) version named; null when none. */
  glibcxx: number[] | null;
}

const EM_X86_64 = 62;

export function elfNeeds(file: string): ElfNeeds {
  const bytes = readFileSync(file);
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46) {
    throw new Error(`${file} is not an ELF file`);
  }
  const machine = bytes.readUInt16LE(18);
  const text = bytes.toString('latin1');
  return { machine, glibc: newest(text, 'GLIBC_'), glibcxx: newest(text, 'GLIBCXX_') };
}

/** The newest `<prefix>x.y[.z]` version named in text. */
function newest(text: string, prefix: string): number[] | null {
  let best: number[] | null = null;
  for (const m of text.matchAll(new RegExp(`${prefix}(\\d+)\\.(\\d+)(?:\\.(\\d+))?`, 'g'))) {
    const v = [m[1], m[2], m[3]].filter((x) => x !== undefined).map(Number);
    if (best === null || compareVersions(v, best) > 0) best = v;
  }
  return best;
}

export function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** XenServer 8's control domain has glibc 2.28: nothing we ship may need a newer one. */
export const TARGET_GLIBC = [2, 28] as const;
/** …and the libstdc++ of GCC 8, which the distributions of glibc 2.28 (EL8) ship. */
const TARGET_GLIBCXX = [3, 4, 25] as const;

/** Why `file` cannot load on a linux-x64 host with glibc 2.28, or null when it can. */
export function unfitForTarget(file: string): string | null {
  const needs = elfNeeds(file);
  if (needs.machine !== EM_X86_64)
    return `${file}: not an x86-64 binary (ELF machine ${needs.machine})`;
  if (needs.glibc && compareVersions(needs.glibc, TARGET_GLIBC) > 0) {
    return `${file}: needs glibc ${needs.glibc.join('.')}, newer than the target's ${TARGET_GLIBC.join('.')}`;
  }
  if (needs.glibcxx && compareVersions(needs.glibcxx, TARGET_GLIBCXX) > 0) {
    return `${file}: needs libstdc++ GLIBCXX_${needs.glibcxx.join('.')}, newer than the target's ${TARGET_GLIBCXX.join('.')}`;
  }
  return null;
}
