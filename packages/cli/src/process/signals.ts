import { quietPipes } from '../output.js';

type Sig = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/**
 * Work that must run however the process ends (a device closed, a VBD unplugged and destroyed,
 * a lock released), and what the process knows about the signal that ends it. Its state is
 * this object's, not the module's: the process has one (`processCleanups` below), hooked on
 * SIGINT, SIGTERM and SIGHUP at its first registration.
 */
class Cleanups {
  private readonly pending = new Set<() => Promise<void>>();
  private hooked = false;
  /** The signal that ended this process's work; from then on nothing new may be created. */
  private signal: Sig | undefined;
  /** A signal's clean-up is under way (and was announced). */
  private cleaning = false;

  constructor(
    /** How long a signal's clean-up may take in all before the process exits anyway. */
    private readonly limitMs: number,
    private readonly proc: Pick<NodeJS.Process, 'on' | 'exit' | 'stderr'> = process,
  ) {}

  /** The signal that ended this process's work, if one arrived (nothing more is recorded then). */
  received(): string | undefined {
    return this.signal;
  }

  /** Whether a signal arrived: a step about to create something on the pool must not. */
  interrupted(): boolean {
    return this.signal !== undefined;
  }

  /** Registers `fn` to run on a signal; the function returned unregisters it. */
  add(fn: () => Promise<void>): () => void {
    if (!this.hooked) {
      this.hooked = true;
      quietPipes(); // the clean-up's messages must not die on a closed stderr
      // Kept for good: a second Ctrl-C during the clean-up must not kill it half way (the VBD
      // would stay plugged). SIGKILL still ends the process; the next run removes what is left.
      for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
        this.proc.on(sig, () => this.onSignal(sig));
    }
    this.pending.add(fn);
    return () => this.pending.delete(fn);
  }

  /**
   * Runs the clean-ups last registered first, one at a time, until none is left (also those
   * registered by calls that were in flight): a device is closed before the VBD under it is
   * unplugged, a VBD destroyed before its VDI, a lock released last. A step that hangs (a dead
   * pool master, a stuck device) does not keep the process: after `limitMs` it exits, and the
   * next run removes what is left. Further signals meanwhile are reported, not obeyed.
   */
  private onSignal(sig: Sig): void {
    const say = (line: string) => this.proc.stderr.write(line);
    if (this.signal !== undefined) {
      if (this.cleaning) say(`${sig}: still cleaning up ...\n`);
      return;
    }
    this.signal = sig;
    // Said only when there is something to undo (a signal at a prompt or while listing SRs
    // plugs nothing).
    this.cleaning = this.pending.size > 0;
    if (this.cleaning) say(`\n${sig}: cleaning up (unplugging the backup disk) ...\n`);
    void (async () => {
      const deadline = Date.now() + this.limitMs;
      for (let c = [...this.pending].at(-1); c; c = [...this.pending].at(-1)) {
        this.pending.delete(c);
        const done = await Promise.race([
          c().then(
            () => true,
            () => true,
          ),
          new Promise<false>((r) =>
            setTimeout(r, Math.max(0, deadline - Date.now()), false).unref(),
          ),
        ]);
        if (!done) {
          say(
            `${sig}: the clean-up took longer than ${this.limitMs / 1000} s: exiting; the next run removes what is left\n`,
          );
          break;
        }
      }
      this.proc.exit(sig === 'SIGINT' ? 130 : 143);
    })();
  }
}

/** This process's clean-ups (XSMETA_CLEANUP_MS bounds a signal's clean-up; default 60 s). */
const processCleanups = new Cleanups(Number(process.env.XSMETA_CLEANUP_MS ?? 60_000));

/** Registers work a signal must still do (see Cleanups.add). */
export const onCleanup = (fn: () => Promise<void>): (() => void) => processCleanups.add(fn);
/** The signal that ended this process's work, if one arrived. */
export const signalReceived = (): string | undefined => processCleanups.received();
/** Whether a signal arrived: nothing new may be created on the pool after that. */
export const interrupted = (): boolean => processCleanups.interrupted();

/**
 * `res`, whose close() a signal's clean-up also calls (before the VBD under it is unplugged:
 * xapi will not unplug a device the control domain holds open).
 */
export function closeOnSignal<T extends { close(): Promise<void> }>(res: T): T {
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= res.close().finally(() => drop());
    return closing;
  };
  const drop = onCleanup(close);
  return new Proxy(res, {
    get(target, key) {
      if (key === 'close') return close;
      const v: unknown = Reflect.get(target, key);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
