// The writer lock of a backup VDI, kept on the pool: the key `xsmeta-lock` of the VDI's
// other_config, set with `VDI.add_to_other_config`. On the pool master an add of a key that is
// already there fails with MAP_DUPLICATE_KEY (ocaml/database/db_cache_impl.ml
// `process_structured_field_locked`, reported by ocaml/xapi/exnHelper.ml), so of two writers
// that race for it exactly one gets it, whatever machine each runs on: dom0 or a workstation.
import { type XapiClient, XapiError } from '@xsmeta/xapi';
import { myOwner, type Owner, ownerGone, parseOwner } from '../process/owner.js';

export const LOCK_KEY = 'xsmeta-lock';
/** How long a lock holds without its writer: a writer on another machine that died. */
export const LOCK_TTL_MS = 30 * 60 * 1000;

export class VdiLockError extends Error {
  readonly code = 'BACKUP_LOCKED';
}

interface LockValue {
  owner: Owner;
  expires: string;
}

function parse(text: string | undefined): LockValue | null {
  if (text === undefined) return null;
  try {
    const v = JSON.parse(text) as { owner?: unknown; expires?: unknown };
    const owner = parseOwner(JSON.stringify(v.owner));
    if (owner === null || typeof v.expires !== 'string') return null;
    return { owner, expires: v.expires };
  } catch {
    return null;
  }
}

/** A lock nobody holds any more: expired, unreadable, or of a dead process of this host. */
function stale(v: LockValue | null, now: number): boolean {
  return v === null || Date.parse(v.expires) <= now || ownerGone(v.owner);
}

async function current(xapi: XapiClient, vdiRef: string): Promise<string | undefined> {
  const oc = await xapi.call<Record<string, string>>('VDI.get_other_config', vdiRef);
  return oc[LOCK_KEY];
}

/**
 * Takes the VDI's writer lock, or throws BACKUP_LOCKED naming its holder. A stale lock is
 * removed first (only if it is still the one read). Returns the release function, which
 * removes the lock only while it is still ours.
 */
export async function takeVdiLock(
  xapi: XapiClient,
  vdiRef: string,
  vdiUuid: string,
  opts: { now?: () => number; ttlMs?: number } = {},
): Promise<() => Promise<void>> {
  const now = opts.now ?? Date.now;
  const mine = JSON.stringify({
    owner: JSON.parse(myOwner()) as Owner,
    expires: new Date(now() + (opts.ttlMs ?? LOCK_TTL_MS)).toISOString(),
  });
  for (let attempt = 0; ; attempt++) {
    try {
      await xapi.call('VDI.add_to_other_config', vdiRef, LOCK_KEY, mine);
      break;
    } catch (e) {
      if (!(e instanceof XapiError) || e.code !== 'MAP_DUPLICATE_KEY') throw e;
    }
    const held = await current(xapi, vdiRef);
    if (held === undefined) continue; // released meanwhile: try again
    const v = parse(held);
    if (attempt < 3 && stale(v, now())) {
      // Remove it only if it is still the stale one we read (another writer may have taken it).
      if ((await current(xapi, vdiRef)) === held)
        await xapi.call('VDI.remove_from_other_config', vdiRef, LOCK_KEY);
      continue;
    }
    const who = v ? `${v.owner.host} (pid ${v.owner.pid}) until ${v.expires}` : 'an unknown writer';
    throw new VdiLockError(
      `the backup VDI ${vdiUuid} is being written by ${who}; wait, or if that run is dead: xe vdi-param-remove uuid=${vdiUuid} param-name=other-config param-key=${LOCK_KEY}`,
    );
  }
  return async () => {
    if ((await current(xapi, vdiRef).catch(() => undefined)) === mine)
      await xapi.call('VDI.remove_from_other_config', vdiRef, LOCK_KEY);
  };
}
