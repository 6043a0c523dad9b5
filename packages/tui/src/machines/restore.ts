import type {
  RestoreFailure,
  RestoreMode,
  RestoreSummary,
  RingUsage,
  SrChoice,
  VmOutcome,
} from '../services.js';
import { isBack, type Keypress, moveCursor } from './keys.js';
import { RESTORE_CHOICES, type RestorePoint } from './restore-choices.js';

/** `ring`: backups in the Pool Metadata Backup disk; `legacy`: disks of the old scripts. */
export type RestoreVariant = 'ring' | 'legacy';

/** How many finished VMs the progress view keeps (the newest). */
export const RECENT_VMS = 5;

/** Each step keeps the choices made before it, so Esc can go back one step. */
interface SrStep {
  readonly variant: RestoreVariant;
  readonly srs: readonly SrChoice[];
  readonly srCursor: number;
}
interface SrChosen extends SrStep {
  readonly sr: SrChoice;
}
interface PointStep extends SrChosen {
  readonly points: readonly RestorePoint[];
  readonly usage: RingUsage | null;
  readonly pointCursor: number;
}
interface ModeStep extends PointStep {
  readonly point: RestorePoint;
  readonly modeCursor: number;
}
interface Chosen extends ModeStep {
  readonly mode: RestoreMode;
  readonly dryRun: boolean;
  /** Replace VMs that already exist (vm-import's force). */
  readonly force: boolean;
}

export type RestoreState =
  | { readonly kind: 'loadingSrs'; readonly req: number; readonly variant: RestoreVariant }
  | ({ readonly kind: 'pickSr'; readonly req: number; readonly notice: string | null } & SrStep)
  /** Legacy only: is legacy restore allowed on this SR? */
  | ({ readonly kind: 'checkingLegacy'; readonly req: number } & SrChosen)
  | ({
      readonly kind: 'legacyUnavailable';
      readonly req: number;
      readonly reason: string;
    } & SrChosen)
  /** Legacy only: such disks are unauthenticated; the user must say they trust them. */
  | ({ readonly kind: 'trustWarning'; readonly req: number } & SrChosen)
  | ({ readonly kind: 'loadingPoints'; readonly req: number } & SrChosen)
  | ({
      readonly kind: 'pickPoint';
      readonly req: number;
      readonly notice: string | null;
    } & PointStep)
  | ({ readonly kind: 'pickMode'; readonly req: number } & ModeStep)
  | ({ readonly kind: 'confirm'; readonly req: number } & Chosen)
  | ({
      readonly kind: 'running' | 'cancelling';
      readonly req: number;
      readonly done: number;
      readonly total: number;
      readonly recent: readonly VmOutcome[];
    } & Chosen)
  | ({
      readonly kind: 'summary';
      readonly req: number;
      readonly restored: number;
      readonly errors: readonly RestoreFailure[];
      /** What reading the backup left out or doubted (see RestoreSummary). */
      readonly notes: readonly string[];
      readonly cancelled: boolean;
      /** The failure whose whole message is shown. */
      readonly errorCursor: number;
    } & Chosen)
  | {
      readonly kind: 'failed';
      readonly req: number;
      readonly message: string;
      /** Where Enter goes (Esc closes); null: nowhere, Enter closes too. */
      readonly back: RestoreState | null;
    }
  | { readonly kind: 'closed'; readonly req: number };

export type RestoreAction =
  | { readonly type: 'key'; readonly key: Keypress }
  | { readonly type: 'srsLoaded'; readonly req: number; readonly srs: readonly SrChoice[] }
  | {
      readonly type: 'legacyChecked';
      readonly req: number;
      readonly available: boolean;
      readonly reason?: string;
    }
  | {
      readonly type: 'pointsLoaded';
      readonly req: number;
      readonly points: readonly RestorePoint[];
      readonly usage: RingUsage | null;
    }
  | { readonly type: 'vm'; readonly req: number; readonly outcome: VmOutcome }
  | { readonly type: 'restoreDone'; readonly req: number; readonly summary: RestoreSummary }
  | { readonly type: 'failed'; readonly req: number; readonly message: string };

export type RestoreWork =
  | { readonly kind: 'listSrs'; readonly req: number }
  | { readonly kind: 'legacyStatus'; readonly req: number; readonly srUuid: string }
  | {
      readonly kind: 'listPoints';
      readonly req: number;
      readonly variant: RestoreVariant;
      readonly srUuid: string;
    }
  | {
      readonly kind: 'restore';
      readonly req: number;
      readonly variant: RestoreVariant;
      readonly srUuid: string;
      readonly point: RestorePoint;
      readonly mode: RestoreMode;
      readonly dryRun: boolean;
      readonly force: boolean;
    };

export function initialRestore(variant: RestoreVariant): RestoreState {
  return { kind: 'loadingSrs', req: 1, variant };
}

const NO_DISK = (sr: SrChoice) =>
  `${sr.name} holds no Pool Metadata Backup disk. If it holds a disk written by the old ` +
  "scripts, use 'Restore Virtual Machine Metadata from Legacy Backup'.";

function srStep(s: SrStep): SrStep {
  return { variant: s.variant, srs: s.srs, srCursor: s.srCursor };
}
function srChosen(s: SrChosen): SrChosen {
  return { ...srStep(s), sr: s.sr };
}
function pointStep(s: PointStep): PointStep {
  return { ...srChosen(s), points: s.points, usage: s.usage, pointCursor: s.pointCursor };
}
function modeStep(s: ModeStep): ModeStep {
  return { ...pointStep(s), point: s.point, modeCursor: s.modeCursor };
}
function chosen(s: Chosen): Chosen {
  return { ...modeStep(s), mode: s.mode, dryRun: s.dryRun, force: s.force };
}

function backToSrs(
  s: SrStep & { readonly req: number },
  notice: string | null = null,
): RestoreState {
  return { kind: 'pickSr', req: s.req, notice, ...srStep(s) };
}

function pickSr(s: Extract<RestoreState, { kind: 'pickSr' }>, k: Keypress): RestoreState {
  const moved = moveCursor(s.srCursor, s.srs.length, k);
  if (moved !== null) return { ...s, srCursor: moved, notice: null };
  if (isBack(k)) return { kind: 'closed', req: s.req };
  const sr = s.srs[s.srCursor];
  if (!sr || (k.name !== 'enter' && k.name !== 'right')) return s;
  const next = { ...srStep(s), sr, req: s.req + 1 };
  if (s.variant === 'legacy') return { kind: 'checkingLegacy', ...next };
  if (!sr.hasBackupDisk) return { ...s, notice: NO_DISK(sr) };
  return { kind: 'loadingPoints', ...next };
}

function pickPoint(s: Extract<RestoreState, { kind: 'pickPoint' }>, k: Keypress): RestoreState {
  const moved = moveCursor(s.pointCursor, s.points.length, k);
  if (moved !== null) return { ...s, pointCursor: moved, notice: null };
  if (isBack(k)) return backToSrs(s);
  const point = s.points[s.pointCursor];
  if (!point || (k.name !== 'enter' && k.name !== 'right')) return s;
  if (point.damaged !== null) {
    return { ...s, notice: `The backup of ${point.date} is damaged: ${point.damaged}` };
  }
  return { kind: 'pickMode', req: s.req, ...pointStep(s), point, modeCursor: 0 };
}

function onKey(s: RestoreState, k: Keypress): RestoreState {
  switch (s.kind) {
    case 'loadingSrs':
    case 'closed':
      return isBack(k) ? { kind: 'closed', req: s.req } : s;
    case 'pickSr':
      return pickSr(s, k);
    case 'checkingLegacy':
    case 'loadingPoints':
    case 'legacyUnavailable':
      // Leaving a loading step drops its request: its answer, when it comes, is ignored.
      if (isBack(k) || (s.kind === 'legacyUnavailable' && k.name === 'enter')) {
        return backToSrs({ ...s, req: s.req + 1 });
      }
      return s;
    case 'trustWarning':
      if (k.name === 'enter') return { kind: 'loadingPoints', req: s.req + 1, ...srChosen(s) };
      return isBack(k) ? backToSrs(s) : s;
    case 'pickPoint':
      return pickPoint(s, k);
    case 'pickMode': {
      const moved = moveCursor(s.modeCursor, RESTORE_CHOICES.length, k);
      if (moved !== null) return { ...s, modeCursor: moved };
      if (isBack(k)) return { kind: 'pickPoint', req: s.req, notice: null, ...pointStep(s) };
      const choice = RESTORE_CHOICES[s.modeCursor];
      if (!choice || (k.name !== 'enter' && k.name !== 'right')) return s;
      return {
        kind: 'confirm',
        req: s.req,
        ...modeStep(s),
        mode: choice.mode,
        dryRun: choice.dryRun,
        force: choice.force,
      };
    }
    case 'confirm':
      if (k.name === 'enter' || (k.name === 'char' && k.char.toLowerCase() === 'y')) {
        return { kind: 'running', req: s.req + 1, ...chosen(s), done: 0, total: 0, recent: [] };
      }
      return isBack(k) || (k.name === 'char' && k.char.toLowerCase() === 'n')
        ? { kind: 'pickMode', req: s.req, ...modeStep(s) }
        : s;
    case 'running':
      return k.name === 'escape' ? { ...s, kind: 'cancelling' } : s;
    case 'cancelling':
      return s;
    case 'summary': {
      const moved = moveCursor(s.errorCursor, s.errors.length, k);
      if (moved !== null) return { ...s, errorCursor: moved };
      // After a dry run, Enter goes back to the choices, to run the restore for real.
      if (k.name === 'enter' && s.dryRun && !s.cancelled) {
        return { kind: 'pickMode', req: s.req, ...modeStep(s) };
      }
      return k.name === 'enter' || k.name === 'escape' ? { kind: 'closed', req: s.req } : s;
    }
    case 'failed':
      if (k.name === 'enter' && s.back) return s.back;
      return k.name === 'enter' || k.name === 'escape' ? { kind: 'closed', req: s.req } : s;
  }
}

function onResult(s: RestoreState, a: Exclude<RestoreAction, { type: 'key' }>): RestoreState {
  switch (a.type) {
    case 'srsLoaded': {
      if (s.kind !== 'loadingSrs') return s;
      // Start on an SR that can be restored from, else on the first.
      const has = (sr: SrChoice) =>
        s.variant === 'ring' ? sr.hasBackupDisk : sr.hasLegacyDisk === true && !sr.hasBackupDisk;
      const srCursor = Math.max(0, a.srs.findIndex(has));
      return { kind: 'pickSr', req: s.req, notice: null, variant: s.variant, srs: a.srs, srCursor };
    }
    case 'legacyChecked':
      if (s.kind !== 'checkingLegacy') return s;
      return a.available
        ? { kind: 'trustWarning', ...srChosen(s), req: s.req }
        : {
            kind: 'legacyUnavailable',
            ...srChosen(s),
            req: s.req,
            reason: a.reason ?? 'Legacy restore is not available on this storage repository.',
          };
    case 'pointsLoaded':
      if (s.kind !== 'loadingPoints') return s;
      return {
        kind: 'pickPoint',
        req: s.req,
        notice: null,
        ...srChosen(s),
        points: a.points,
        usage: a.usage,
        pointCursor: 0,
      };
    case 'vm': {
      if (s.kind !== 'running' && s.kind !== 'cancelling') return s;
      const recent = [...s.recent, a.outcome].slice(-RECENT_VMS);
      return { ...s, done: a.outcome.done, total: a.outcome.total, recent };
    }
    case 'restoreDone':
      if (s.kind !== 'running' && s.kind !== 'cancelling') return s;
      return {
        kind: 'summary',
        req: s.req,
        ...chosen(s),
        restored: a.summary.restored,
        errors: a.summary.errors,
        notes: a.summary.notes ?? [],
        cancelled: s.kind === 'cancelling',
        errorCursor: 0,
      };
    case 'failed':
      switch (s.kind) {
        case 'loadingSrs':
          return { kind: 'failed', req: s.req, message: a.message, back: null };
        case 'checkingLegacy':
        case 'loadingPoints':
          return { kind: 'failed', req: s.req, message: a.message, back: backToSrs(s) };
        case 'running':
        case 'cancelling': {
          const back: RestoreState = { kind: 'pickMode', req: s.req, ...modeStep(s) };
          const message =
            s.kind === 'cancelling'
              ? `The restore was stopped: ${a.message} VMs imported before it stopped stay in the pool.`
              : a.message;
          return { kind: 'failed', req: s.req, message, back };
        }
        default:
          return s;
      }
  }
}

export function restoreReducer(state: RestoreState, action: RestoreAction): RestoreState {
  if (action.type === 'key') return onKey(state, action.key);
  return action.req === state.req ? onResult(state, action) : state;
}

/** What the state asks the services to do; the dialog runs it once per `req`. */
export function restoreWork(s: RestoreState): RestoreWork | null {
  switch (s.kind) {
    case 'loadingSrs':
      return { kind: 'listSrs', req: s.req };
    case 'checkingLegacy':
      return { kind: 'legacyStatus', req: s.req, srUuid: s.sr.uuid };
    case 'loadingPoints':
      return { kind: 'listPoints', req: s.req, variant: s.variant, srUuid: s.sr.uuid };
    case 'running':
      return {
        kind: 'restore',
        req: s.req,
        variant: s.variant,
        srUuid: s.sr.uuid,
        point: s.point,
        mode: s.mode,
        dryRun: s.dryRun,
        force: s.force,
      };
    default:
      return null;
  }
}
