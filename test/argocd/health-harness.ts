// Drives test/argocd/run_health_tests.lua: reads Argo CD style health_test.yaml suites, turns the YAML
// testdata into Lua table literals (Lua has no YAML parser) and runs them through a real Lua 5.1.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';

export const LUA = '/usr/bin/lua5.1';
export const RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'run_health_tests.lua');

export const HealthStatus = z.object({
  status: z.enum(['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown']),
  message: z.string().default(''),
});
export type HealthStatus = z.infer<typeof HealthStatus>;

export const HealthTestFile = z.object({
  tests: z.array(z.object({ healthStatus: HealthStatus, inputPath: z.string().min(1) })).min(1),
});
export type HealthTestFile = z.infer<typeof HealthTestFile>;

export type HealthCase = { name: string; obj: unknown; expected?: HealthStatus };
export type HealthSuite = { dir: string; group: string; kind: string; script: string; cases: HealthCase[] };
export const LuaCaseResult = z.object({
  name: z.string(),
  ok: z.boolean(),
  status: z.string().nullable(),
  message: z.string().nullable(),
  error: z.string().nullable(),
});
export type LuaCaseResult = z.infer<typeof LuaCaseResult>;
export type LuaRun = { exitCode: number; results: LuaCaseResult[]; stderr: string };

// Lua 5.1 has no \u escapes: control bytes and DEL become \ddd, everything else is written as is.
function luaString(value: string): string {
  let out = '"';
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (code < 32 || code === 127) out += '\\' + String(code).padStart(3, '0');
    else out += ch;
  }
  return out + '"';
}

/** A Lua table literal for a JSON-like value, decoded the way Argo CD hands `obj` to Lua (null = absent). */
export function toLuaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot encode ${value} for Lua`);
    return String(value);
  }
  if (Array.isArray(value)) return '{' + value.map((v) => toLuaLiteral(v) + ',').join('') + '}';
  if (typeof value === 'object') {
    const fields = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `[${luaString(k)}]=${toLuaLiteral(v)},`);
    return '{' + fields.join('') + '}';
  }
  throw new Error(`cannot encode ${typeof value} for Lua`);
}

/** Every `<group>/<Kind>/health_test.yaml` under root, with its testdata parsed. */
export async function loadHealthSuites(root: string): Promise<HealthSuite[]> {
  const suites: HealthSuite[] = [];
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const testFiles = entries
    .filter((e) => e.isFile() && e.name === 'health_test.yaml')
    .map((e) => join(e.parentPath, e.name))
    .sort();
  for (const file of testFiles) {
    const dir = dirname(file);
    const [group, kind] = relative(root, dir).split(sep);
    if (group === undefined || kind === undefined) throw new Error(`${file}: expected <group>/<Kind>/health_test.yaml`);
    const spec = HealthTestFile.parse(parse(await readFile(file, 'utf8')));
    const cases: HealthCase[] = [];
    for (const test of spec.tests) {
      cases.push({
        name: test.inputPath,
        obj: parse(await readFile(join(dir, test.inputPath), 'utf8')),
        expected: test.healthStatus,
      });
    }
    suites.push({ dir, group, kind, script: join(dir, 'health.lua'), cases });
  }
  return suites;
}

/** Runs the cases against a health script in the sandboxed Lua 5.1 runner. */
export async function runHealthScript(script: string, cases: HealthCase[]): Promise<LuaRun> {
  const work = await mkdtemp(join(tmpdir(), 'argocd-health-'));
  try {
    const casesFile = join(work, 'cases.lua');
    const literal = cases.map(
      (c) => `{name=${toLuaLiteral(c.name)},obj=${toLuaLiteral(c.obj)},expected=${c.expected ? toLuaLiteral(c.expected) : 'nil'}},\n`,
    );
    await writeFile(casesFile, 'return {\n' + literal.join('') + '}\n');
    return await new Promise<LuaRun>((resolve, reject) => {
      execFile(LUA, [RUNNER, script, casesFile], { timeout: 30_000 }, (err, stdout, stderr) => {
        const exitCode = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        if (exitCode !== 0 && exitCode !== 1) {
          reject(new Error(`lua runner failed (${String(err?.code ?? err?.signal)}): ${stderr}`));
          return;
        }
        const results = stdout
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => LuaCaseResult.parse(JSON.parse(line)));
        resolve({ exitCode, results, stderr });
      });
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
