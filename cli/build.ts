// `npm run build`: one esbuild bundle per step (dist/<step>.js, what the image starts), plus dist/serve.js
// which picks the bundle from FUNCTION. Bundling cuts module load time and memory (see bench/).
import { build } from 'esbuild';
import { mkdir, writeFile } from 'node:fs/promises';
import { STEP_NAMES } from '../functions/registry.ts';

await mkdir('dist', { recursive: true });
await Promise.all(STEP_NAMES.map((step) => build({
  stdin: {
    contents: `import { step } from './functions/${step}/index.ts';\nimport { startFromEnv } from './runtime/main.ts';\nawait startFromEnv(step, process.env);\n`,
    resolveDir: process.cwd(),
    loader: 'ts',
    sourcefile: `${step}.entry.ts`,
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  outfile: `dist/${step}.js`,
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // CommonJS dependencies bundled into ESM still call require(); give them one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  logLevel: 'warning',
})));
await writeFile('dist/serve.js', `// Picks the step bundle from FUNCTION (one image serves every step).\nconst step = process.env.FUNCTION;\nconst steps = ${JSON.stringify(STEP_NAMES)};\nif (!steps.includes(step)) { process.stderr.write('FUNCTION must be one of ' + steps.join(', ') + '\\n'); process.exit(1); }\nawait import('./' + step + '.js');\n`);
process.stdout.write(`built ${STEP_NAMES.length} step bundles into dist/\n`);
