/** An XAPI failure: code and parameters, as ErrorDescription carries them. */
export class Failure extends Error {
  constructor(
    readonly code: string,
    readonly params: string[] = [],
  ) {
    super(`${code} ${params.join(' ')}`);
  }
}

/** xapi's date format: `20240101T12:00:00Z`. */
export const xapiDate = (d = new Date()) =>
  `${d.toISOString().slice(0, 10).replace(/-/g, '')}T${d.toISOString().slice(11, 19)}Z`;
