import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FaultOptions } from './faults.js';
import { startSimulator } from './server.js';

const USAGE =
  'usage: xapi-sim --state DIR [--port N] [--socket PATH] [--vms N] [--srs N] [--seed N] [--password P] [--fresh-pool] [--faults JSON]';

/** `xapi-sim`: serves a simulated pool until SIGTERM or SIGINT (see the README). */
export async function main(argv: string[]): Promise<void> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        state: { type: 'string' },
        port: { type: 'string', default: '0' },
        socket: { type: 'string' },
        vms: { type: 'string', default: '20' },
        srs: { type: 'string', default: '2' },
        seed: { type: 'string', default: '1' },
        password: { type: 'string' },
        'fresh-pool': { type: 'boolean', default: false },
        faults: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    console.error(`xapi-sim: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (typeof values.state !== 'string') {
    console.error(`xapi-sim: --state DIR is required\n${USAGE}`);
    process.exit(2);
  }
  const int = (k: string) => {
    const n = Number(values[k]);
    if (!Number.isInteger(n) || n < 0) {
      console.error(`xapi-sim: --${k} must be a whole number`);
      process.exit(2);
    }
    return n;
  };
  const state = values.state;
  if (existsSync(state) && !statSync(state).isDirectory()) {
    console.error(
      `xapi-sim: --state ${state} is not a folder: name a folder (created when missing)`,
    );
    process.exit(2);
  }
  // A fresh pool keeps the storage already in DIR and starts with no VMs: say so when asked
  // for VMs or SRs that it will not create (on an empty DIR it seeds them as usual).
  const given = (k: string) => argv.some((a) => a === `--${k}` || a.startsWith(`--${k}=`));
  const hasStorage =
    existsSync(join(state, 'pool.json')) ||
    (existsSync(join(state, 'sr')) && readdirSync(join(state, 'sr')).length > 0);
  if (values['fresh-pool'] === true && hasStorage && (given('vms') || given('srs')))
    console.error(
      'xapi-sim: --fresh-pool keeps the SRs in the state folder and starts a pool with no VMs: --vms and --srs are ignored',
    );
  const faultsText = (values.faults as string | undefined) ?? process.env.XAPI_SIM_FAULTS;
  const sim = await startSimulator({
    stateDir: state,
    port: int('port'),
    vms: int('vms'),
    srs: int('srs'),
    seed: int('seed'),
    ...(typeof values.password === 'string'
      ? { password: values.password }
      : process.env.XAPI_SIM_PASSWORD
        ? { password: process.env.XAPI_SIM_PASSWORD }
        : {}),
    freshPool: values['fresh-pool'] === true,
    ...(typeof values.socket === 'string' ? { socket: values.socket } : {}),
    ...(faultsText ? { faults: JSON.parse(faultsText) as FaultOptions } : {}),
  }).catch((e: unknown) => {
    console.error(`xapi-sim: ${(e as Error).message.split('\n')[0]}`);
    process.exit(1);
  });
  // Listen for the stop signals before saying it is ready: a supervisor may stop it at once.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  console.log(`XAPI simulator listening on ${sim.url}`);
  await stopped;
  await sim.close();
  process.exit(0);
}
