import { setFlagsFromString } from 'node:v8';

/**
 * Imported first by every bin: V8's young generation stays at its starting size instead of
 * growing to 2 × 16 MiB under a burst of allocation (a 5,000-VM restore's imports), which the
 * process then keeps. `--semi-space-growth-factor` is read each time V8 decides to grow the new
 * space, so setting it here, before the commands allocate, takes effect in this process; the
 * semi-space size flags are read only when the heap is set up and would not (bench/NOTES.md,
 * restore memory). The price is more, smaller scavenges.
 */
setFlagsFromString('--semi-space-growth-factor=1');

/**
 * V8's own growth of the young generation (its default factor, 2), for the rest of a process
 * whose memory another bound already holds: a backup that takes the one-request export (core's
 * `onOneRequestExport`: at most EXPORT_ALL_MAX_VMS VMs), where the small young generation cost about 90 ms of
 * collections in a 1,000-VM backup, and the larger one left the peak at 163-177 MiB
 * (bench/NOTES.md). Only for a process that ends with that run (not the console).
 */
export function growYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=2');
}
