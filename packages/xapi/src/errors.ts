/**
 * Every failure of this package is an {@link XapiError}. `code` is either the XAPI error code
 * sent by the pool (`SESSION_AUTHENTICATION_FAILED`, `HANDLE_INVALID`, `VDI_LOCATION_MISSING`,
 * ...) with its parameters, or one of our own codes (see {@link XapiLocalCode}).
 */
export class XapiError extends Error {
  override readonly name = 'XapiError';
  readonly code: string;
  readonly params: string[];

  constructor(
    code: string,
    params: readonly string[] = [],
    message?: string,
    options?: ErrorOptions,
  ) {
    super(message ?? (params.length > 0 ? `${code}: ${params.join(', ')}` : code), options);
    this.code = code;
    this.params = [...params];
  }
}

/** The codes this package raises itself (XAPI's own codes come from the pool). */
export type XapiLocalCode =
  /** Connection refused or reset, DNS failure, a dropped connection, an unexpected HTTP status. */
  | 'XAPI_TRANSPORT'
  /** The call or transfer did not finish within `timeoutMs`. */
  | 'XAPI_TIMEOUT'
  /** Certificate verification failed, or the fingerprint did not match the pin. */
  | 'XAPI_TLS'
  /** The peer's answer is not the protocol we speak (bad XML or JSON, content-type, shape). */
  | 'XAPI_PROTOCOL'
  /** An input exceeded a bound (XML size or nesting depth, body size). */
  | 'XAPI_LIMIT'
  /** The caller's AbortSignal fired. */
  | 'XAPI_CANCELLED'
  /** The client was logged out. */
  | 'XAPI_CLOSED'
  /** A value cannot be encoded, or an option is invalid. */
  | 'XAPI_INVALID_ARGUMENT'
  /** An XML-RPC `<fault>` answer; params are [faultCode, faultString]. */
  | 'XMLRPC_FAULT';

/** True when `e` is an XapiError carrying `code`. */
export function isXapiError(e: unknown, code?: string): e is XapiError {
  return e instanceof XapiError && (code === undefined || e.code === code);
}
