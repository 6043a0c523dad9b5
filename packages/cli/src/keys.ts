import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { RingKeys } from '@xsmeta/vdi-store';
import { resolveSettings } from './config.js';
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
const SIGNING_FILE = 'xsmeta-signing-key.pem';
const VERIFY_FILE = 'xsmeta-verify-key.pem';

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

export const KEYS_HELP = `usage: xsmeta keys init [--dir DIR]
  Create an Ed25519 key pair for signed backups: DIR/${SIGNING_FILE} (mode 0600, keep it
  on the hosts that back up) and DIR/${VERIFY_FILE} (give it to whoever restores).
  Default DIR: <state dir>/keys. Existing keys are never overwritten.
  Then: XSMETA_SIGNING_KEY=DIR/${SIGNING_FILE} signs every backup, and
  XSMETA_VERIFY_KEY=DIR/${VERIFY_FILE} makes verify and restore refuse unsigned or
  badly signed backups.`;

/** `xsmeta keys init [--dir DIR]`. */
export async function cmdKeys(argv: string[], io: Io): Promise<number> {
  let values: { dir?: string | undefined; 'state-dir'?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { dir: { type: 'string' }, 'state-dir': { type: 'string' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (e) {
    io.err(`xsmeta: keys: ${(e as Error).message}`);
    return 2;
  }
  if (positionals[0] !== 'init' || positionals.length !== 1) {
    io.err(`xsmeta: keys: say 'xsmeta keys init [--dir DIR]'`);
    return 2;
  }
  const dir =
    typeof values.dir === 'string'
      ? values.dir
      : join(
          resolveSettings({ stateDir: values['state-dir'] as string | undefined }).stateDir,
          'keys',
        );
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
  return 0;
}
