/**
 * xapi tasks: created for a transfer, awaited (`event.from` on the task class, or polling
 * `task.get_record` on a pool without events), destroyed afterwards; `Async.*` calls; and the
 * decoding of a task's result and error.
 */
import { XapiError } from './errors.js';
import type { TaskRecord, XapiRef } from './records.js';
import { normaliseXml, type RpcCallOptions } from './rpc.js';
import type { Session } from './session.js';
import { decodeValue } from './xmlrpc-decode.js';

export interface WaitTaskOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Parses a `task.result` fragment: '' stays '', an XML-RPC `<value>` is decoded, else as is. */
export function parseTaskResult(fragment: string): unknown {
  const t = fragment.trim();
  if (t === '') return '';
  if (!t.startsWith('<')) return fragment;
  return normaliseXml(decodeValue(t));
}

export class Tasks {
  readonly #session: Session;
  /** Whether the pool answers `event.from`: unknown until the first wait. */
  #events: boolean | undefined;

  constructor(session: Session) {
    this.#session = session;
  }

  /** `task.create(label, description)`: a task of ours, for a transfer to report through. */
  async create(label: string, description: string, signal?: AbortSignal): Promise<XapiRef> {
    const ref = await this.#session.call('task.create', [label, description], {
      signal,
      timeoutMs: this.#session.settings.timeoutMs,
    });
    return String(ref);
  }

  /** `task.destroy`, best effort (the task may be gone already); nothing once logged out. */
  async destroy(task: XapiRef): Promise<void> {
    if (this.#session.closed) return;
    try {
      await this.#session.call('task.destroy', [task]);
    } catch {
      // best effort: the task may be gone already
    }
  }

  /**
   * Calls `Async.<method>`, waits for its task, returns the parsed `task.result` (an XML-RPC
   * fragment; a bare ref stays a string), and destroys the task. A failed task throws its
   * `error_info` as an XapiError.
   */
  async callAsync(method: string, params: readonly unknown[]): Promise<unknown> {
    const task = String(await this.#session.call(`Async.${method}`, params));
    try {
      return parseTaskResult(
        await this.wait(task, { timeoutMs: this.#session.settings.taskTimeoutMs }),
      );
    } finally {
      await this.destroy(task);
    }
  }

  /**
   * Waits until the task leaves `pending`; resolves with its `result` fragment, rejects with
   * its `error_info` (or TASK_CANCELLED). Uses `event.from` on the task class, or polls
   * `task.get_record` when the pool has no events.
   */
  async wait(taskRef: string, opts: WaitTaskOptions = {}): Promise<string> {
    const { signal } = opts;
    const timeoutMs = this.#session.settings.timeoutMs;
    const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
    const rpcOpts = (): RpcCallOptions => ({
      signal,
      timeoutMs:
        deadline === undefined
          ? timeoutMs
          : Math.max(1, Math.min(timeoutMs, deadline - Date.now())),
    });
    const check = (): void => {
      if (signal?.aborted) throw new XapiError('XAPI_CANCELLED', [taskRef], 'task wait cancelled');
      if (deadline !== undefined && Date.now() >= deadline) {
        throw new XapiError('XAPI_TIMEOUT', [taskRef], 'task did not finish in time');
      }
    };
    const fetch = async (): Promise<TaskRecord> =>
      (await this.#session.call('task.get_record', [taskRef], rpcOpts())) as TaskRecord;

    let rec = await fetch();
    let token = '';
    let delay = 10;
    for (;;) {
      const outcome = taskOutcome(taskRef, rec);
      if (outcome !== undefined) return outcome;
      check();
      if (this.#events !== false) {
        const left = deadline === undefined ? 30_000 : deadline - Date.now();
        // event.from takes a float timeout in seconds; never wait past the deadline
        const waitS = Math.round(Math.max(0.05, Math.min(30, left / 1000)) * 1000) / 1000;
        let reply: { token?: unknown; events?: unknown };
        try {
          reply = (await this.#session.call('event.from', [['task'], token, waitS], {
            signal,
            timeoutMs: Math.ceil(waitS * 1000) + timeoutMs,
          })) as typeof reply;
          this.#events = true;
        } catch (e) {
          if (e instanceof XapiError && isNoEvents(e.code)) {
            this.#events = false;
            continue;
          }
          throw e;
        }
        if (typeof reply?.token !== 'string' || !Array.isArray(reply.events)) {
          throw new XapiError('XAPI_PROTOCOL', ['event.from'], 'malformed event.from answer');
        }
        token = reply.token;
        for (const ev of reply.events as {
          ref?: unknown;
          operation?: unknown;
          snapshot?: unknown;
        }[]) {
          if (ev?.ref !== taskRef) continue;
          if (ev.operation === 'del') {
            throw new XapiError('HANDLE_INVALID', ['task', taskRef], 'the task was destroyed');
          }
          rec =
            typeof ev.snapshot === 'object' && ev.snapshot !== null
              ? (ev.snapshot as TaskRecord)
              : await fetch();
        }
      } else {
        await sleep(
          deadline === undefined ? delay : Math.min(delay, Math.max(1, deadline - Date.now())),
          signal,
        );
        delay = Math.min(delay * 2, 500);
        check();
        rec = await fetch();
      }
    }
  }
}

function isNoEvents(code: string): boolean {
  return code === 'MESSAGE_METHOD_UNKNOWN' || code === 'MESSAGE_PARAMETER_COUNT_MISMATCH';
}

/** The fragment of a finished task, a thrown error for a failed one, undefined while pending. */
function taskOutcome(ref: XapiRef, rec: TaskRecord): string | undefined {
  if (typeof rec !== 'object' || rec === null) {
    throw new XapiError('XAPI_PROTOCOL', ['task'], 'malformed task record');
  }
  switch (rec.status) {
    case 'success':
      return typeof rec.result === 'string' ? rec.result : '';
    case 'failure': {
      const [code, ...params] = errorInfo(rec);
      throw new XapiError(code ?? 'INTERNAL_ERROR', params);
    }
    case 'cancelled': {
      const [code, ...params] = errorInfo(rec);
      throw code ? new XapiError(code, params) : new XapiError('TASK_CANCELLED', [ref]);
    }
    case 'pending':
    case 'cancelling':
      return undefined;
    default:
      throw new XapiError('XAPI_PROTOCOL', ['task status'], 'unknown task status');
  }
}

function errorInfo(rec: TaskRecord): string[] {
  return Array.isArray(rec.error_info) ? rec.error_info.map(String) : [];
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const cancelled = (): XapiError => new XapiError('XAPI_CANCELLED', ['wait'], 'cancelled');
    if (signal?.aborted) {
      reject(cancelled());
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(cancelled());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
