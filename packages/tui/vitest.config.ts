import { defineConfig, mergeConfig } from 'vitest/config';
import shared from '../../vitest.shared.js';

// Ink draws only the last frame when it believes it runs in CI (is-in-ci reads CI at import);
// these tests look at every frame, as a person at a terminal does.
export default mergeConfig(
  shared,
  defineConfig({ test: { env: { CI: 'false', CONTINUOUS_INTEGRATION: 'false' } } }),
);
