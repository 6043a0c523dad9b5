// The connector's tests: a started fake XAPI and a client logged in to it, both let go after
// each test (`afterEach(cleanUp)`), and the XapiError a call fails with.
import { xapiFailure } from '../../../../test-support/xapi.js';
import { XapiClient, type XapiConnectOptions, type XapiError } from '../../src/index.js';
import { type FakeOptions, FakeXapi } from './fake-xapi.js';

export const PASSWORD = 'secret';
const started: FakeXapi[] = [];
const clients: XapiClient[] = [];

export async function fake(opts: FakeOptions = {}): Promise<FakeXapi> {
  const f = await new FakeXapi(opts).start();
  started.push(f);
  return f;
}

export async function connect(
  f: FakeXapi,
  opts: Partial<XapiConnectOptions> = {},
): Promise<XapiClient> {
  const c = await XapiClient.connect({ url: f.url, username: 'root', password: PASSWORD, ...opts });
  clients.push(c);
  return c;
}

/** Logs the clients out and stops the fakes of the test that ends. */
export async function cleanUp(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.logout()));
  await Promise.all(started.splice(0).map((f) => f.stop()));
}

/** Runs `f`, expects an XapiError, checks it never shows the password, returns it. */
export const failure = (f: () => Promise<unknown>, secret = PASSWORD): Promise<XapiError> =>
  xapiFailure(f, secret);
