import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url).pathname;

it('no file of the repository points at a document outside it or at a machine path', () => {
  const files = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && f !== 'CHANGELOG.md' && f !== 'LICENSE' && !f.endsWith('.pem'));
  const outside =
    /CONTRACT\.md|DESIGN\.md|STYLE\.md|reference\/(xapi|legacy-format|ring-store)\.md|\/work\/|\.\.\/shared\//;
  const hits: string[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(join(root, f), 'utf8');
    } catch {
      continue;
    }
    text.split('\n').forEach((line, i) => {
      if (outside.test(line)) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 100)}`);
    });
  }
  expect(hits).toEqual([]);
});

it('the README says how to install on a pool master, and the operations guide has every exit code', () => {
  const ops = readFileSync(join(root, 'docs/operations.md'), 'utf8');
  expect(ops).toContain('## Installing on a pool master');
  for (const c of ['xsmeta list', 'xsmeta verify', 'xsmeta restore', 'xsmeta schedule'])
    expect(ops).toMatch(
      new RegExp(`\\| \`${c}[^|]*\\|[^\\n]*3: no backup VDI|\\| \`${c}[^|]*\\|[^\\n]*2: usage`),
    );
  expect(readFileSync(join(root, 'README.md'), 'utf8')).toContain(
    'docs/operations.md#installing-on-a-pool-master',
  );
});
