import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { TOOL_VERSION } from '../src/index.js';

const versionOf = (pkg: string): string =>
  (
    JSON.parse(readFileSync(new URL(`../../${pkg}/package.json`, import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version;

// Core does no I/O, so the version every record carries is a constant: this test is what keeps
// it in step with the packages (bump them together; a drift fails here, in CI).
it.each(['core', 'cli'])(
  'TOOL_VERSION is the version of @xsmeta/%s (the tool that writes the records)',
  (pkg) => {
    expect(TOOL_VERSION).toBe(versionOf(pkg));
  },
);
