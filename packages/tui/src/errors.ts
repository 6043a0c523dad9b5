/** The codes of the errors `runConsole` throws (see the README's table). */
export type ConsoleErrorCode = 'CONSOLE_NO_TTY' | 'CONSOLE_CRASHED';

/** An error of the console, with a stable code. */
export class ConsoleError extends Error {
  override readonly name = 'ConsoleError';
  readonly code: ConsoleErrorCode;

  constructor(code: ConsoleErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
