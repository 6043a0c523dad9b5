import { escapeStrings, escapeText } from '@xsmeta/core';
import type { ConsoleServices } from './services.js';

/**
 * The services as the console draws them: every string they answer (SR and VM names, dates,
 * messages; in results, progress, per-VM outcomes and errors) has its control characters
 * escaped (core's escapeText), so that a name a guest chose cannot retitle, clear or repaint
 * the terminal. What the console sends to the services is left as it is.
 */
export function escapedServices(s: ConsoleServices): ConsoleServices {
  const answer = async <T>(call: () => Promise<T>): Promise<T> => {
    try {
      return escapeStrings(await call());
    } catch (e) {
      if (e instanceof Error) e.message = escapeText(e.message);
      throw e;
    }
  };
  return {
    needsLogin: () => s.needsLogin(),
    login: (username, password) => answer(() => s.login(username, password)),
    listSrs: () => answer(() => s.listSrs()),
    backup: (srUuid, onProgress, signal) =>
      answer(() => s.backup(srUuid, (p) => onProgress(escapeStrings(p)), signal)),
    listBackups: (srUuid) => answer(() => s.listBackups(srUuid)),
    restore: (req, onVm, signal) =>
      answer(() => s.restore(req, (v) => onVm(escapeStrings(v)), signal)),
    legacyStatus: (srUuid) => answer(() => s.legacyStatus(srUuid)),
    listLegacyBackups: (srUuid) => answer(() => s.listLegacyBackups(srUuid)),
    restoreLegacy: (req, onVm, signal) =>
      answer(() => s.restoreLegacy(req, (v) => onVm(escapeStrings(v)), signal)),
    getSchedule: () => answer(() => s.getSchedule()),
    setSchedule: (frequency) => answer(() => s.setSchedule(frequency)),
  };
}
