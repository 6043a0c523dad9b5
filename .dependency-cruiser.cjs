/**
 * The layer rules the README states (its package section), enforced in CI (`pnpm lint`).
 * Arrows point down the table: front-ends -> domain/adapters. No cycles.
 * A violation fails the build; scripts/check-layers.test.mjs proves that it does.
 */
const pkg = (name) => `^packages/${name}/`;
const src = (name) => `^packages/${name}/src/`;
const ours = '^(packages|apps)/|^@xsmeta/';

/** from -> the only folders of ours it may import (besides itself) */
const allowed = {
  core: [],
  'vdi-store': [],
  xapi: [],
  'eventstore-level': ['core'],
  'legacy-compat': ['core', 'vdi-store'],
  // The console reaches the pool, the disks and the store only through its ConsoleServices port.
  tui: ['core'],
  cli: ['core', 'eventstore-level', 'vdi-store', 'xapi', 'legacy-compat', 'tui'],
};

const layerRules = Object.entries(allowed).map(([from, to]) => ({
  name: `layer-${from}`,
  comment: `packages/${from} may import only: ${to.length ? to.join(', ') : 'nothing of ours'} (the README's layer rules)`,
  severity: 'error',
  from: { path: src(from) },
  to: {
    path: ours,
    pathNot: [pkg(from), ...to.map(pkg)],
  },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve is a missing dependency in package.json.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle between modules is a bug.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'core-no-node-builtins',
      severity: 'error',
      comment: 'core does no I/O of its own: Node built-ins arrive through ports.',
      from: { path: src('core') },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'core-domain-not-app',
      severity: 'error',
      comment:
        "core's domain (rules, deciders, projections) never imports its app layer (use cases over ports): arrows point down.",
      from: { path: '^packages/core/src/(domain|events)/' },
      to: { path: '^packages/core/src/app/' },
    },
    {
      name: 'sim-only-xapi',
      severity: 'error',
      comment: 'apps/xapi-sim may use packages/xapi (types, codecs, records) only.',
      from: { path: '^apps/xapi-sim/' },
      to: { path: ours, pathNot: ['^apps/xapi-sim/', pkg('xapi')] },
    },
    {
      name: 'packages-not-apps',
      severity: 'error',
      comment: 'packages never import apps (their tests may start the simulator).',
      from: { path: '^packages/', pathNot: '\\.(e2e\\.)?test\\.tsx?$|/test/' },
      to: { path: '^apps/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|node_modules|\\.turbo)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.depcruise.json' },
    preserveSymlinks: false,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['source', 'import', 'default'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.json'],
    },
  },
};
