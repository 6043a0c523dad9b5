/**
 * Opt-in Ed25519 signatures of records (FORMAT.md "Signatures"): the keys a ring is given, the
 * message a signature covers, a key's id, the trailer written and its check.
 */
import {
  createHash,
  createPublicKey,
  type KeyObject,
  sign,
  verify as verifySignature,
} from 'node:crypto';
import { RingError } from '../errors.js';
import { type Entry, enc, SIG_TRAILER } from './layout.js';

const SIG_DOMAIN = enc.encode('xsmeta ring record signature v1\0');

const keyIds = new WeakMap<KeyObject, Uint8Array>();

/**
 * The first 8 bytes of the SHA-256 of a public key's SPKI DER: names the key in a record.
 * Computed once per key (verify checks it for every signed record).
 */
function keyId(key: KeyObject): Uint8Array {
  let id = keyIds.get(key);
  if (!id) {
    const pub = key.type === 'private' ? createPublicKey(key) : key;
    id = createHash('sha256')
      .update(pub.export({ type: 'spki', format: 'der' }))
      .digest()
      .subarray(0, 8);
    keyIds.set(key, id);
  }
  return id;
}

/** What a record's signature covers: its creation time, the payload's SHA-256 and its label. */
function signedMessage(createdAt: number, digest: Uint8Array, label: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIG_DOMAIN.length + 8 + 32 + 2 + label.length);
  const v = new DataView(out.buffer);
  out.set(SIG_DOMAIN, 0);
  const o = SIG_DOMAIN.length;
  v.setBigUint64(o, BigInt(createdAt), true);
  out.set(digest, o + 8);
  v.setUint16(o + 40, label.length, true);
  out.set(label, o + 42);
  return out;
}

/**
 * Optional Ed25519 keys (node:crypto KeyObjects): with `signingKey` every append is signed; with
 * `verifyKey` every read (so verify and restore) refuses an unsigned record (RING_UNSIGNED) or
 * one whose signature does not match (RING_BAD_SIGNATURE). Without keys, nothing changes.
 */
export interface RingKeys {
  signingKey?: KeyObject;
  verifyKey?: KeyObject;
}

export function checkKeys(k: RingKeys): RingKeys {
  if (
    k.signingKey &&
    (k.signingKey.type !== 'private' || k.signingKey.asymmetricKeyType !== 'ed25519')
  )
    throw new RingError('RING_INVALID_ARGUMENT', 'the signing key must be an Ed25519 private key');
  if (k.verifyKey && (k.verifyKey.type !== 'public' || k.verifyKey.asymmetricKeyType !== 'ed25519'))
    throw new RingError('RING_INVALID_ARGUMENT', 'the verify key must be an Ed25519 public key');
  return {
    ...(k.signingKey ? { signingKey: k.signingKey } : {}),
    ...(k.verifyKey ? { verifyKey: k.verifyKey } : {}),
  };
}

/** The trailer of a record appended with `signer`: its signature, then the key's id. */
export function signatureTrailer(
  signer: KeyObject,
  createdAt: number,
  data: Uint8Array,
  label: Uint8Array,
): Uint8Array {
  const digest = createHash('sha256').update(data).digest();
  const trailer = new Uint8Array(SIG_TRAILER);
  trailer.set(sign(null, signedMessage(createdAt, digest, label), signer), 0);
  trailer.set(keyId(signer), 64);
  return trailer;
}

/** Checks a signed record's trailer (signature, key id) against the verify key. */
export function checkSignature(
  e: Entry,
  key: KeyObject,
  digest: Uint8Array,
  trailer: Uint8Array,
): void {
  const want = keyId(key);
  if (!want.every((b, i) => trailer[64 + i] === b)) {
    throw new RingError(
      'RING_BAD_SIGNATURE',
      `record ${e.seq} is signed by another key (id ${Buffer.from(trailer.subarray(64)).toString('hex')}, not ${Buffer.from(want).toString('hex')}): it is not trusted`,
    );
  }
  const msg = signedMessage(e.createdAt, digest, e.label);
  if (!verifySignature(null, msg, key, trailer.subarray(0, 64))) {
    throw new RingError(
      'RING_BAD_SIGNATURE',
      `record ${e.seq}: its signature does not match its content: it is not trusted`,
    );
  }
}
