// `npm run bench` works from a fresh clone: build the step bundles when dist/ is missing or older than the sources.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SOURCE_DIRS = ['functions', 'runtime', 'events'];
const SOURCE_FILES = ['cli/build.ts', 'package-lock.json'];

function newestMtime(root: string, path: string): number {
  const full = join(root, path);
  if (!existsSync(full)) return 0;
  const st = statSync(full);
  if (!st.isDirectory()) return path.endsWith('.test.ts') ? 0 : st.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(full)) newest = Math.max(newest, newestMtime(root, join(path, entry)));
  return newest;
}

/** Why dist/<step>.js needs a rebuild, or undefined when it is current. */
export function staleReason(root: string, steps: readonly string[]): string | undefined {
  let oldest = Number.POSITIVE_INFINITY;
  for (const step of steps) {
    const bundle = join(root, 'dist', `${step}.js`);
    if (!existsSync(bundle)) return `dist/${step}.js is missing`;
    oldest = Math.min(oldest, statSync(bundle).mtimeMs);
  }
  const newest = Math.max(...[...SOURCE_DIRS, ...SOURCE_FILES].map((p) => newestMtime(root, p)));
  return newest > oldest ? 'sources are newer than dist/' : undefined;
}

/** Runs `npm run build` when needed; returns what it did. Throws when the build fails. */
export function ensureBuild(root: string, steps: readonly string[], log: (line: string) => void = () => undefined): 'built' | 'current' {
  const reason = staleReason(root, steps);
  if (!reason) return 'current';
  log(`building (${reason}): npm run build`);
  const result = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed (${result.status ?? result.signal}): ${result.stderr || result.stdout}`);
  return 'built';
}
