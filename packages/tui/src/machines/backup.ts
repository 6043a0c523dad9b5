import type { BackupProgress, BackupResult, RingUsage, SrChoice } from '../services.js';
import { isBack, type Keypress, moveCursor } from './keys.js';

/** The SR list and where its cursor was, kept so that each step can go back to it. */
interface SrList {
  readonly srs: readonly SrChoice[];
  readonly cursor: number;
}

export type BackupState =
  | { readonly kind: 'loading'; readonly req: number }
  | ({ readonly kind: 'pickSr'; readonly req: number } & SrList)
  /** The SR has no backup disk yet: say that one will be created. */
  | ({ readonly kind: 'confirmCreate'; readonly req: number; readonly sr: SrChoice } & SrList)
  | ({
      readonly kind: 'running' | 'cancelling';
      readonly req: number;
      readonly sr: SrChoice;
      readonly progress: BackupProgress | null;
    } & SrList)
  | {
      readonly kind: 'done';
      readonly req: number;
      readonly sr: SrChoice;
      readonly result: BackupResult;
      /** The ring after the backup, for its picture; loaded after the backup. */
      readonly usage: RingUsage | 'loading' | 'unavailable';
    }
  | ({
      readonly kind: 'failed';
      readonly req: number;
      readonly sr: SrChoice | null;
      readonly message: string;
      readonly cancelled: boolean;
    } & SrList)
  | { readonly kind: 'closed'; readonly req: number };

export type BackupAction =
  | { readonly type: 'key'; readonly key: Keypress }
  | { readonly type: 'srsLoaded'; readonly req: number; readonly srs: readonly SrChoice[] }
  | { readonly type: 'progress'; readonly req: number; readonly progress: BackupProgress }
  | { readonly type: 'backupDone'; readonly req: number; readonly result: BackupResult }
  | { readonly type: 'usageLoaded'; readonly req: number; readonly usage: RingUsage | null }
  | { readonly type: 'failed'; readonly req: number; readonly message: string };

export type BackupWork =
  | { readonly kind: 'listSrs'; readonly req: number }
  | { readonly kind: 'backup'; readonly req: number; readonly srUuid: string }
  | { readonly kind: 'usage'; readonly req: number; readonly srUuid: string };

export const initialBackup: BackupState = { kind: 'loading', req: 1 };

function start(state: BackupState & SrList, sr: SrChoice): BackupState {
  return {
    kind: 'running',
    req: state.req + 1,
    sr,
    progress: null,
    srs: state.srs,
    cursor: state.cursor,
  };
}

function onKey(state: BackupState, k: Keypress): BackupState {
  switch (state.kind) {
    case 'loading':
      return isBack(k) ? { kind: 'closed', req: state.req } : state;
    case 'pickSr': {
      const moved = moveCursor(state.cursor, state.srs.length, k);
      if (moved !== null) return { ...state, cursor: moved };
      if (isBack(k)) return { kind: 'closed', req: state.req };
      const sr = state.srs[state.cursor];
      if ((k.name === 'enter' || k.name === 'right') && sr) {
        return sr.hasBackupDisk
          ? start(state, sr)
          : { kind: 'confirmCreate', req: state.req, sr, srs: state.srs, cursor: state.cursor };
      }
      return state;
    }
    case 'confirmCreate':
      if (k.name === 'enter') return start(state, state.sr);
      if (isBack(k))
        return { kind: 'pickSr', req: state.req, srs: state.srs, cursor: state.cursor };
      return state;
    case 'running':
      // Stopping is safe: the ring keeps its earlier backups whole whatever happens.
      return k.name === 'escape' ? { ...state, kind: 'cancelling' } : state;
    case 'cancelling':
      return state;
    case 'done':
      return k.name === 'enter' || k.name === 'escape' ? { kind: 'closed', req: state.req } : state;
    case 'failed':
      if (k.name === 'enter' && state.srs.length > 0) {
        return { kind: 'pickSr', req: state.req, srs: state.srs, cursor: state.cursor };
      }
      return k.name === 'escape' || k.name === 'enter' ? { kind: 'closed', req: state.req } : state;
    case 'closed':
      return state;
  }
}

export function backupReducer(state: BackupState, action: BackupAction): BackupState {
  if (action.type === 'key') return onKey(state, action.key);
  if (action.req !== state.req) return state;
  switch (action.type) {
    case 'srsLoaded': {
      if (state.kind !== 'loading') return state;
      // Start on the pool's default SR, as scheduled backups do.
      const def = action.srs.findIndex((s) => s.isDefault);
      return { kind: 'pickSr', req: state.req, srs: action.srs, cursor: Math.max(0, def) };
    }
    case 'progress':
      return state.kind === 'running' || state.kind === 'cancelling'
        ? { ...state, progress: action.progress }
        : state;
    case 'backupDone':
      return state.kind === 'running' || state.kind === 'cancelling'
        ? {
            kind: 'done',
            req: state.req + 1,
            sr: state.sr,
            result: action.result,
            usage: 'loading',
          }
        : state;
    case 'usageLoaded':
      return state.kind === 'done' && state.usage === 'loading'
        ? { ...state, usage: action.usage ?? 'unavailable' }
        : state;
    case 'failed':
      switch (state.kind) {
        case 'loading':
          return {
            kind: 'failed',
            req: state.req,
            sr: null,
            message: action.message,
            cancelled: false,
            srs: [],
            cursor: 0,
          };
        case 'running':
        case 'cancelling':
          return {
            kind: 'failed',
            req: state.req,
            sr: state.sr,
            message: action.message,
            cancelled: state.kind === 'cancelling',
            srs: state.srs,
            cursor: state.cursor,
          };
        default:
          return state;
      }
  }
}

/** What the state asks the services to do; the dialog runs it once per `req`. */
export function backupWork(state: BackupState): BackupWork | null {
  switch (state.kind) {
    case 'loading':
      return { kind: 'listSrs', req: state.req };
    case 'running':
      return { kind: 'backup', req: state.req, srUuid: state.sr.uuid };
    case 'done':
      return state.usage === 'loading'
        ? { kind: 'usage', req: state.req, srUuid: state.sr.uuid }
        : null;
    default:
      return null;
  }
}
