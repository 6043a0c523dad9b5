import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RingKeys } from '@xsmeta/vdi-store';
import type { Io } from './output.js';

class KeyError extends Error {
  constructor(
    readonly code: 'KEY_INVALID' | 'KEY_EXISTS',
    message: string,
  ) {
    super(message);
  }
}

/** File names `xsmeta keys init` writes. */
export const SIGNING_FILE = 'xsmeta-signing-key.pem';
export const VERIFY_FILE = 'xsmeta-verify-key.pem';

function readKey(path: string, what: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new KeyError(
      'KEY_INVALID',
      `cannot read the ${what} ${path} (${variable}): ${(e as Error).message}`,
    );
  }
}

/**
 * The ring's optional Ed25519 keys, from the environment: XSMETA_SIGNING_KEY (private key PEM,
 * readable by its owner only) signs every backup; XSMETA_VERIFY_KEY (public key PEM) makes verify
 * and restore refuse unsigned or badly signed backups. Neither set: none (backups unsigned, and
 * read as before).
 */
export function ringKeys(env: NodeJS.ProcessEnv = process.env): RingKeys {
  const out: RingKeys = {};
  const signing = env.XSMETA_SIGNING_KEY;
  if (signing) {
    const mode = statSync(signing, { throwIfNoEntry: false })?.mode ?? 0;
    if (mode & 0o077) {
      throw new KeyError(
        'KEY_INVALID',
        `the signing key ${signing} (XSMETA_SIGNING_KEY) is readable by others: chmod 600 it`,
      );
    }
    out.signingKey = parseKey(
      () => createPrivateKey(readKey(signing, 'signing key', 'XSMETA_SIGNING_KEY')),
      signing,
      'private',
    );
  }
  const verify = env.XSMETA_VERIFY_KEY;
  if (verify) {
    out.verifyKey = parseKey(
      () => createPublicKey(readKey(verify, 'verify key', 'XSMETA_VERIFY_KEY')),
      verify,
      'public',
    );
  }
  return out;
}

function parseKey(make: () => KeyObject, path: string, kind: 'private' | 'public'): KeyObject {
  let key: KeyObject;
  try {
    key = make();
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw new KeyError('KEY_INVALID', `${path} is not a PEM ${kind} key: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519' || key.type !== kind)
    throw new KeyError('KEY_INVALID', `${path} is not an Ed25519 ${kind} key`);
  return key;
}

/** `xsmeta keys init`: a new Ed25519 key pair in `dir`; existing keys are never overwritten. */
export function initKeys(dir: string, io: Io): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const priv = join(dir, SIGNING_FILE);
  const pub = join(dir, VERIFY_FILE);
  // Never overwrite a key: that would orphan every backup it signed ('wx' guards a race too).
  for (const f of [priv, pub])
    if (existsSync(f))
      throw new KeyError('KEY_EXISTS', `${f} already exists and is kept: choose another --dir`);
  writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }), {
    mode: 0o600,
    flag: 'wx',
  });
  writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }), {
    mode: 0o644,
    flag: 'wx',
  });
  io.out(`Signing key (keep it secret): ${priv}`);
  io.out(`Verify key (give it to whoever restores): ${pub}`);
  io.out(`Sign backups: XSMETA_SIGNING_KEY=${priv}`);
  io.out(`Refuse unsigned backups on verify and restore: XSMETA_VERIFY_KEY=${pub}`);
}
