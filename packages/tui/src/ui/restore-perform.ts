import type { RestoreAction, RestoreWork } from '../machines/restore.js';
import { pointFromBackup, pointFromLegacy } from '../machines/restore-choices.js';
import type { ConsoleServices } from '../services.js';
import { orFailed } from './work.js';

/** Runs the service call a restore state asks for and reports it as actions. */
export async function performRestore(
  services: ConsoleServices,
  work: RestoreWork,
  dispatch: (a: RestoreAction) => void,
  signal: AbortSignal,
): Promise<void> {
  const { req } = work;
  await orFailed(req, dispatch, async () => {
    switch (work.kind) {
      case 'listSrs':
        dispatch({ type: 'srsLoaded', req, srs: await services.listSrs() });
        return;
      case 'legacyStatus': {
        const st = await services.legacyStatus(work.srUuid);
        dispatch({
          type: 'legacyChecked',
          req,
          available: st.available,
          ...(st.reason === undefined ? {} : { reason: st.reason }),
        });
        return;
      }
      case 'listPoints':
        if (work.variant === 'ring') {
          const list = await services.listBackups(work.srUuid);
          const points = list.backups.map(pointFromBackup);
          dispatch({ type: 'pointsLoaded', req, points, usage: list.usage });
        } else {
          const list = await services.listLegacyBackups(work.srUuid);
          dispatch({ type: 'pointsLoaded', req, points: list.map(pointFromLegacy), usage: null });
        }
        return;
      case 'restore': {
        const onVm = (outcome: Parameters<Parameters<ConsoleServices['restore']>[1]>[0]) =>
          dispatch({ type: 'vm', req, outcome });
        const base = {
          srUuid: work.srUuid,
          mode: work.mode,
          dryRun: work.dryRun,
          ...(work.force ? { force: true } : {}),
        };
        const summary =
          work.variant === 'ring' && work.point.seq !== null
            ? await services.restore({ ...base, seq: work.point.seq }, onVm, signal)
            : await services.restoreLegacy({ ...base, date: work.point.date }, onVm, signal);
        dispatch({ type: 'restoreDone', req, summary });
        return;
      }
    }
  });
}
