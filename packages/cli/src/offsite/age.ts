// Encryption of copy files to an age X25519 recipient (age-encryption: the age format's
// TypeScript implementation by its author), so that only the holder of the identity, kept off
// the pool, can read a copy.
import { readFileSync } from 'node:fs';
import { Decrypter, Encrypter } from 'age-encryption';
import { UsageError } from '../config.js';

export class DecryptError extends Error {
  readonly code = 'COPY_DECRYPT_FAILED';
}

/** An age X25519 recipient (`age1…`, as `age-keygen -y` prints it), else a usage error. */
export function checkRecipient(r: string): string {
  if (!/^age1[02-9ac-hj-np-z]{58}$/.test(r))
    throw new UsageError(
      `--encrypt-to takes an age X25519 recipient (age1…, from age-keygen -y), not ${r.slice(0, 20)}`,
    );
  return r;
}

export async function encryptTo(recipient: string, data: Uint8Array): Promise<Uint8Array> {
  const e = new Encrypter();
  e.addRecipient(checkRecipient(recipient));
  return e.encrypt(data);
}

/** Decrypts with the identities (`AGE-SECRET-KEY-1…` lines) of an age identity file. */
export async function decryptWith(identityFile: string, data: Uint8Array): Promise<Uint8Array> {
  let text: string;
  try {
    text = readFileSync(identityFile, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the identity file ${identityFile}: ${(e as Error).message}`);
  }
  const keys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('AGE-SECRET-KEY-'));
  if (keys.length === 0)
    throw new UsageError(`${identityFile} holds no age identity (AGE-SECRET-KEY-1… line)`);
  const d = new Decrypter();
  for (const k of keys) d.addIdentity(k);
  try {
    return await d.decrypt(data);
  } catch (e) {
    throw new DecryptError(
      `cannot decrypt the copy with ${identityFile}: ${(e as Error).message} (is it the identity the copy was encrypted to?)`,
    );
  }
}
