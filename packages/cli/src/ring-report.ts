import type { RingPort } from '@xsmeta/core';
import type { Io } from './output.js';

/** Prints what opening found wrong with the ring's root (a damaged copy, recovered records). */
export function warnRoot(ring: RingPort, io: Io): void {
  for (const w of ring.status?.warnings ?? []) io.err(`xsmeta: warning: backup disk root: ${w}`);
}

/** The root part of a verify report for --json: present only when the root is not whole. */
export function rootOf(report: { root?: { ok: boolean; warnings: string[] } }): {
  root?: { ok: boolean; warnings: string[] };
} {
  return report.root && !report.root.ok
    ? { root: { ok: report.root.ok, warnings: report.root.warnings } }
    : {};
}
