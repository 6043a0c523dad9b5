/** Reading a POSIX ustar (what an import receives); the writer is @xsmeta/xapi's tarOne. */
/** Reads the members of a tar (bounded): name -> bytes. Throws on a malformed header. */
export function untar(buf: Uint8Array, maxMembers = 16): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const dec = new TextDecoder();
  let off = 0;
  while (off + 512 <= buf.length && out.size < maxMembers) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const name = dec.decode(h.subarray(0, 100)).replace(/\0.*$/s, '');
    const size = Number.parseInt(
      dec.decode(h.subarray(124, 136)).replace(/\0.*$/s, '').trim() || '0',
      8,
    );
    if (!Number.isFinite(size) || size < 0 || off + 512 + size > buf.length)
      throw new Error('malformed tar');
    out.set(name, buf.slice(off + 512, off + 512 + size));
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}
