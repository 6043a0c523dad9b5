// The rules scripts/pack-check.mjs applies to a packed package and to a README, as pure
// functions so that scripts/pack-check-selftest.mjs can prove each one bites.

/** The Node.js versions every published package supports (the root package.json's too). */
export const NODE_RANGE = '>=20.19';

/**
 * What is wrong with a packed package: `pkg` its packed package.json, `files` the paths in
 * the tarball (without `package/`), `version` the version in the repository, `ours` the names
 * of the packages packed alongside (an `@xsmeta/` dependency must be one of them). Returns one
 * line per problem; none: publishable.
 */
export function manifestProblems({ pkg, files, version, ours }) {
  const problems = [];
  const inTar = new Set(files);
  if (pkg.private) problems.push('"private" is set: it cannot be published');
  if (pkg.version !== version) problems.push(`version ${pkg.version}, not ${version}`);
  if (pkg.engines?.node !== NODE_RANGE) {
    problems.push(`engines.node is ${pkg.engines?.node}, not ${NODE_RANGE}`);
  }
  if (hasCondition(pkg.exports, 'source')) {
    problems.push(
      `the published exports keep a "source" condition: ${JSON.stringify(pkg.exports)}`,
    );
  }
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [dep, range] of Object.entries(pkg[field] ?? {})) {
      if (/^(workspace|catalog|link|file):/.test(range)) {
        problems.push(`${field}.${dep} is still "${range}"`);
      } else if (field === 'dependencies' && dep.startsWith('@xsmeta/') && !ours.has(dep)) {
        problems.push(`depends on ${dep}, which is not packed with it (add it to PACKAGES)`);
      }
    }
  }
  if (!pkg.exports && !pkg.bin) problems.push('neither exports nor bin: nothing to use');
  const named = [];
  const collect = (v) => {
    if (typeof v === 'string') named.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(collect);
  };
  for (const field of ['exports', 'main', 'types', 'bin']) collect(pkg[field]);
  for (const f of named) {
    if (!inTar.has(f.replace(/^\.\//, '')))
      problems.push(`names ${f}, which is not in the tarball`);
  }
  for (const f of ['README.md', 'LICENSE']) {
    if (!inTar.has(f)) problems.push(`${f} is not in the tarball`);
  }
  const stray = files.filter(
    (f) => !/^(dist|bin)\//.test(f) && !['README.md', 'LICENSE', 'package.json'].includes(f),
  );
  if (stray.length)
    problems.push(`unexpected files in the tarball: ${stray.slice(0, 5).join(', ')}`);
  const tests = files.filter((f) => /\.test\.|(^|\/)test-support\//.test(f));
  if (tests.length) problems.push(`test files in the tarball: ${tests.slice(0, 5).join(', ')}`);
  return problems;
}

/** Whether an `exports` value uses `condition` anywhere (nested conditions included). */
function hasCondition(exportsValue, condition) {
  if (!exportsValue || typeof exportsValue !== 'object') return false;
  return Object.entries(exportsValue).some(
    ([k, v]) => k === condition || hasCondition(v, condition),
  );
}

/**
 * The compiled files in `dist/` that no source in `src/` produces any more (a module removed
 * or renamed since the last build): they would be published. `dist` and `src` are the paths
 * under each folder. A bundle's chunks (`chunks/<name>-<hash>.js`, the cli's esbuild output)
 * have no source of their own: one is stale when no other file of `dist/` imports it
 * (`referenced`, from bundleChunkRefs), as a chunk left by an earlier build is.
 */
export function staleOutputs(dist, src, referenced = new Set()) {
  const sources = new Set(src.map((f) => f.replace(/\.tsx?$/, '')));
  return dist.filter((f) => {
    const chunk = /^(chunks\/[\w.-]+\.js)(\.map)?$/.exec(f);
    if (chunk) return !referenced.has(chunk[1]);
    const m = /^(.*?)(\.d)?\.js(\.map)?$|^(.*?)\.d\.ts(\.map)?$/.exec(f);
    const stem = m?.[1] ?? m?.[4];
    return stem !== undefined && !sources.has(stem);
  });
}

/**
 * The chunks a bundle's files import: every relative `.js` specifier of a static or dynamic
 * import or re-export in `files` (`{ path, text }`, paths under `dist/`), as a path under `dist/`.
 */
export function bundleChunkRefs(files) {
  const refs = new Set();
  for (const { path, text } of files) {
    const dir = path.split('/').slice(0, -1);
    for (const m of text.matchAll(
      /(?:\bfrom\s*|\bimport\s*\(?\s*)["'](\.{1,2}\/[^"']+\.js)["']/g,
    )) {
      const parts = [...dir];
      for (const seg of m[1].split('/')) {
        if (seg === '..') parts.pop();
        else if (seg !== '.') parts.push(seg);
      }
      refs.add(parts.join('/'));
    }
  }
  return refs;
}

/**
 * A README's "Use it on its own" examples: `{ problem }` when the section is missing or does
 * not say `npm install <name>`, else `{ examples }`, each `{ lang: 'js', code, expect }` (run
 * with node) or `{ lang: 'sh', lines, expect }` (every line but `npm install …` and comments,
 * run with sh). `expect` is the ```text block right after it (what it must print), or null.
 */
export function readmeExamples(readme, name) {
  const section = /^## Use it on its own\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme)?.[1];
  if (section === undefined) return { problem: 'no "## Use it on its own" section' };
  if (!new RegExp(`^npm install (\\S+ )*${name.replace('/', '\\/')}( |$)`, 'm').test(section)) {
    return { problem: `its "Use it on its own" section does not say \`npm install ${name}\`` };
  }
  const blocks = [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((b) => ({
    lang: b[1],
    code: b[2],
  }));
  const examples = [];
  blocks.forEach((b, i) => {
    const next = blocks[i + 1];
    const expect = next?.lang === 'text' ? next.code.trimEnd() : null;
    if (b.lang === 'js') examples.push({ lang: 'js', code: b.code, expect });
    if (b.lang === 'sh') {
      const lines = b.code
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#') && !l.startsWith('npm install '));
      if (lines.length) examples.push({ lang: 'sh', lines, expect });
    }
  });
  return { examples };
}
