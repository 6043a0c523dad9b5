import { expect, it } from 'vitest';
import * as catalogue from '../src/catalogue.js';
import * as core from '../src/index.js';

it('the catalogue subpath exports the same functions as the index, and none of the rest', () => {
  const entries = Object.entries(catalogue);
  expect(entries.map(([n]) => n).sort()).toEqual([
    'AppError',
    'backupVdiOf',
    'errorCode',
    'fmtBytes',
    'listings',
    'resolveSr',
    'verifyRecord',
    'withRing',
  ]);
  const index: Record<string, unknown> = { ...core };
  for (const [n, f] of entries) expect(f, n).toBe(index[n]);
});
