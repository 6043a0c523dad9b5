/** An XAPI failure: code and parameters, as ErrorDescription carries them. */
export class Failure extends Error {
  constructor(
    readonly code: string,
    readonly params: string[] = [],
  ) {
    super(`${code} ${params.join(' ')}`);
  }
}
