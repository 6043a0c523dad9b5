import type { Io } from '../output.js';

export interface Tick {
  phase: string;
  done: number;
  total: number;
  bytes: number;
}

const WIDTH = 24;
const LABEL: Record<string, string> = {
  capture: 'Capturing',
  restore: 'Restoring',
  write: 'Writing',
  read: 'Reading',
  srmeta: 'SR names',
};

function size(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function duration(s: number): string {
  const t = Math.max(0, Math.round(s));
  return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

/**
 * One line of the bar: phase, bar, VMs and templates done/total, bytes, rate and time left.
 * `elapsedMs` is the time since the phase began.
 */
export function barLine(t: Tick, elapsedMs: number): string {
  const frac = t.total > 0 ? Math.min(1, t.done / t.total) : 0;
  const full = Math.round(frac * WIDTH);
  const secs = elapsedMs / 1000;
  const rate = secs > 0 ? t.bytes / secs : 0;
  const eta = t.done > 0 && t.done < t.total ? (secs / t.done) * (t.total - t.done) : null;
  const items = t.phase === 'capture' || t.phase === 'restore' ? ' VMs and templates' : '';
  return `${LABEL[t.phase] ?? t.phase} [${'#'.repeat(full)}${'.'.repeat(WIDTH - full)}] ${t.done}/${t.total}${items}  ${size(t.bytes)}  ${size(rate)}/s${eta === null ? '' : `  ETA ${duration(eta)}`}`;
}

export interface Bar {
  /** The callback a run reports its progress to. */
  tick(t: Tick): void;
  /** An Io whose lines are printed above the bar (the bar is cleared, then drawn again). */
  io: Io;
  /** Clears the bar for good. */
  end(): void;
}

/**
 * A progress bar on stderr, drawn only when stderr is a terminal and the output is not JSON;
 * otherwise ticks are ignored and `io` is the one given. Every line printed through the returned
 * `io`, on stdout or stderr, first erases the bar and redraws it after, so no line is ever
 * glued to it. Redraws are at most every 100 ms (`now` is injectable for tests).
 */
export function progressBar(
  io: Io,
  opts: {
    enabled: boolean;
    write?: (s: string) => void;
    now?: () => number;
  },
): Bar {
  if (!opts.enabled) return { tick: () => {}, io, end: () => {} };
  const write = opts.write ?? ((s: string) => process.stderr.write(s));
  const now = opts.now ?? Date.now;
  let shown = '';
  let phase = '';
  let started = 0;
  let drawn = 0;
  const clear = () => {
    if (shown) write('\r\u001b[K');
  };
  const draw = () => {
    if (shown) write(`\r\u001b[K${shown}`);
  };
  return {
    tick(t) {
      const at = now();
      if (t.phase !== phase) {
        phase = t.phase;
        started = at;
      } else if (at - drawn < 100 && t.done < t.total) return;
      drawn = at;
      shown = barLine(t, at - started);
      draw();
    },
    io: {
      isTTY: io.isTTY,
      out(line) {
        clear();
        io.out(line);
        draw();
      },
      err(line) {
        clear();
        io.err(line);
        draw();
      },
    },
    end() {
      clear();
      shown = '';
    },
  };
}
