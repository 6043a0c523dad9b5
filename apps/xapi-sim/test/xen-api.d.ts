// Xen Orchestra's client ships no types; the test declares the little it uses.
declare module 'xen-api' {
  export function createClient(opts: {
    url: string;
    auth: { user: string; password: string };
    transport?: 'auto' | 'json-rpc' | 'xml-rpc';
    allowUnauthorized?: boolean;
  }): unknown;
}
