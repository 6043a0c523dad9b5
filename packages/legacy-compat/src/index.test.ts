import { expect, test } from 'vitest';
import { LEGACY_TARGET_VERSION } from './index.js';

test('reads core from source', () => {
  expect(LEGACY_TARGET_VERSION).toBe(1);
});
