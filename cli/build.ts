// `npm run build`: one esbuild bundle per step (what the image starts), plus dist/serve.js which picks the step
// from FUNCTION. Each `dist/<step>.js` is a two-line loader that turns on Node's on-disk compile cache
// (dist/.node-cache, warmed here at build time so the image ships it) before importing `dist/<step>.main.js`:
// V8 then skips parsing and compiling most of the 2 MB bundle on a cold start (see bench/).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { STEP_NAMES } from '../functions/registry.ts';

const CACHE = '.node-cache';
await rm('dist', { recursive: true, force: true });
await mkdir('dist', { recursive: true });
await Promise.all(STEP_NAMES.map((step) => build({
  stdin: {
    contents: `import { step } from './functions/${step}/index.ts';\nimport { startFromEnv } from './runtime/main.ts';\nif (!process.env.MLOPS_COMPILE_ONLY) await startFromEnv(step, process.env);\n`,
    resolveDir: process.cwd(),
    loader: 'ts',
    sourcefile: `${step}.entry.ts`,
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  outfile: `dist/${step}.main.js`,
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // CommonJS dependencies bundled into ESM still call require(); give them one. faas-js-runtime's lib/metrics.js
  // assigns an undeclared global (`= osu = require('node-os-utils')`), which throws in an ES module's strict
  // mode unless the global exists.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url); globalThis.osu = undefined;" },
  logLevel: 'warning',
})));
const loader = (step: string): string => [
  "import { enableCompileCache } from 'node:module';",
  `enableCompileCache?.(process.env.NODE_COMPILE_CACHE || new URL('./${CACHE}', import.meta.url).pathname);`,
  `await import('./${step}.main.js');`,
  '',
].join('\n');
await Promise.all(STEP_NAMES.map((step) => writeFile(`dist/${step}.js`, loader(step))));
await writeFile('dist/serve.js', `// Picks the step bundle from FUNCTION (one image serves every step).\nconst step = process.env.FUNCTION;\nconst steps = ${JSON.stringify(STEP_NAMES)};\nif (!steps.includes(step)) { process.stderr.write('FUNCTION must be one of ' + steps.join(', ') + '\\n'); process.exit(1); }\nawait import('./' + step + '.js');\n`);
// Warm the compile cache: load every bundle once without serving.
// NODE_COMPILE_CACHE must be unset (not empty: Node would then cache into the working directory).
const warmEnv: Record<string, string | undefined> = { ...process.env, MLOPS_COMPILE_ONLY: '1' };
delete warmEnv.NODE_COMPILE_CACHE;
for (const step of STEP_NAMES) execFileSync(process.execPath, [`dist/${step}.js`], { env: warmEnv, stdio: 'inherit' });
process.stdout.write(`built ${STEP_NAMES.length} step bundles into dist/ (compile cache warmed)\n`);
