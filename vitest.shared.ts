import { defineConfig } from 'vitest/config';

/**
 * Shared by every package's vitest.config.ts (merged with mergeConfig).
 *
 * The suite must pass on a 2-core machine kept busy by other work, where a test can run 5-10
 * times slower than alone: the default budget is two minutes per test and per hook, and a test
 * that does a lot of work states its own budget, far above its need. How many packages test at
 * once is bounded in scripts/test.mjs.
 */
export default defineConfig({
  resolve: { conditions: ['source', 'module', 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: ['source', 'module', 'node', 'import', 'default'] } },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx', 'test/**/*.test.ts', 'test/**/*.test.tsx'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    passWithNoTests: true,
    // The JSON report feeds scripts/test-summary.mjs, which prints the suite's closing line.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }]],
  },
});
