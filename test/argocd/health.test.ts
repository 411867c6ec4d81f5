import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CUSTOMIZATIONS_DIR } from '../../config/argocd/generate.ts';
import { loadHealthSuites, runHealthScript, toLuaLiteral } from './health-harness.ts';
import type { HealthCase, HealthSuite } from './health-harness.ts';

const NVJ_SCRIPT = join(CUSTOMIZATIONS_DIR, 'mlops.mlops.dev', 'NotebookValidationJob', 'health.lua');
const MODELRUN_SCRIPT = join(CUSTOMIZATIONS_DIR, 'lifecycle.mlops.dev', 'ModelRun', 'health.lua');
const NVJ_PHASES = ['Initializing', 'Building', 'BuildComplete', 'Pending', 'Running', 'ValidationRunning', 'Succeeded', 'Failed'];
const MODELRUN_PHASES = ['Pending', 'Training', 'Copying', 'Gating', 'Promoting', 'Verifying', 'Succeeded', 'Failed', 'Rejected', 'RolledBack'];

const suites: HealthSuite[] = await loadHealthSuites(CUSTOMIZATIONS_DIR);

function phaseOf(c: HealthCase): unknown {
  const status = (c.obj as { status?: { phase?: unknown } }).status;
  return status?.phase;
}

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'argocd-sandbox-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function runInline(source: string, cases: HealthCase[] = [{ name: 'probe', obj: { status: {} } }]) {
  const script = join(work, `probe-${Math.random().toString(36).slice(2)}.lua`);
  await writeFile(script, source);
  return runHealthScript(script, cases);
}

describe('health_test.yaml suites', () => {
  test('one suite per kind, laid out as resource_customizations/<group>/<Kind>', () => {
    expect(suites.map((s) => `${s.group}/${s.kind}`)).toEqual([
      'lifecycle.mlops.dev/ModelRun',
      'mlops.mlops.dev/NotebookValidationJob',
    ]);
  });

  test.each(suites.map((s) => [`${s.group}/${s.kind}`, s] as const))(
    '%s: every case gives the exact status and message in the Lua 5.1 sandbox',
    async (_label, suite) => {
      const run = await runHealthScript(suite.script, suite.cases);
      expect(run.results).toEqual(
        suite.cases.map((c) => ({
          name: c.name,
          ok: true,
          status: c.expected?.status,
          message: c.expected?.message,
          error: null,
        })),
      );
      expect(run.exitCode).toBe(0);
      expect(run.stderr).toBe('');
    },
  );

  test('NotebookValidationJob cases cover every phase, no status and an empty status', () => {
    const suite = suites.find((s) => s.kind === 'NotebookValidationJob');
    const cases = suite?.cases ?? [];
    for (const phase of NVJ_PHASES) expect(cases.map(phaseOf)).toContain(phase);
    expect(cases.some((c) => (c.obj as { status?: unknown }).status === undefined)).toBe(true);
    expect(cases.some((c) => JSON.stringify((c.obj as { status?: unknown }).status) === '{}')).toBe(true);
    expect(cases.some((c) => c.expected?.status === 'Unknown')).toBe(true);
  });

  test('ModelRun cases cover every phase, no status and an empty status', () => {
    const suite = suites.find((s) => s.kind === 'ModelRun');
    const cases = suite?.cases ?? [];
    for (const phase of MODELRUN_PHASES) expect(cases.map(phaseOf)).toContain(phase);
    expect(cases.some((c) => (c.obj as { status?: unknown }).status === undefined)).toBe(true);
    expect(cases.some((c) => JSON.stringify((c.obj as { status?: unknown }).status) === '{}')).toBe(true);
    const healthy = cases.filter((c) => c.expected?.status === 'Healthy').map(phaseOf);
    expect(new Set(healthy)).toEqual(new Set(['Succeeded']));
  });
});

describe('scripts survive malformed status without a Lua error', () => {
  const malformed: HealthCase[] = [
    { name: 'status is a string', obj: { status: 'weird' } },
    { name: 'phase is a number', obj: { status: { phase: 5 } } },
    { name: 'phase is empty', obj: { status: { phase: '' } } },
    { name: 'failed, retryCount as text', obj: { status: { phase: 'Failed', retryCount: '3', message: 7 } } },
    { name: 'failed, conditions not a list', obj: { status: { phase: 'Failed', conditions: 'x' } } },
    { name: 'building, buildStatus not a map', obj: { status: { phase: 'Building', buildStatus: 'x' } } },
    { name: 'rejected, checks not a list', obj: { status: { phase: 'Rejected', gate: { checks: 'x' } } } },
    { name: 'rejected, check without a name', obj: { status: { phase: 'Rejected', gate: { checks: [{ ok: false }, 'x'] } } } },
    { name: 'succeeded, release not a map', obj: { status: { phase: 'Succeeded', release: 'x' } } },
    { name: 'training, step is a number', obj: { status: { phase: 'Training', step: 3 } } },
  ];

  test('NotebookValidationJob', async () => {
    const run = await runHealthScript(NVJ_SCRIPT, malformed);
    expect(run.results.map((r) => [r.name, r.status, r.message, r.error])).toEqual([
      ['status is a string', 'Progressing', 'Waiting for the operator', null],
      ['phase is a number', 'Progressing', 'Waiting for the operator', null],
      ['phase is empty', 'Progressing', 'Waiting for the operator', null],
      ['failed, retryCount as text', 'Degraded', 'Failed: Notebook validation failed (retries: 3)', null],
      ['failed, conditions not a list', 'Degraded', 'Failed: Notebook validation failed (retries: 0)', null],
      ['building, buildStatus not a map', 'Progressing', 'Building: building the notebook image', null],
      ['rejected, checks not a list', 'Unknown', 'Unknown phase: Rejected', null],
      ['rejected, check without a name', 'Unknown', 'Unknown phase: Rejected', null],
      ['succeeded, release not a map', 'Healthy', 'Notebook validation succeeded', null],
      ['training, step is a number', 'Unknown', 'Unknown phase: Training', null],
    ]);
  });

  test('ModelRun', async () => {
    const run = await runHealthScript(MODELRUN_SCRIPT, malformed);
    expect(run.results.map((r) => [r.name, r.status, r.message, r.error])).toEqual([
      ['status is a string', 'Progressing', 'Waiting for the run to start', null],
      ['phase is a number', 'Progressing', 'Waiting for the run to start', null],
      ['phase is empty', 'Progressing', 'Waiting for the run to start', null],
      ['failed, retryCount as text', 'Degraded', 'Failed', null],
      ['failed, conditions not a list', 'Degraded', 'Failed', null],
      ['building, buildStatus not a map', 'Unknown', 'Unknown phase: Building', null],
      ['rejected, checks not a list', 'Degraded', 'Rejected by the health gate', null],
      ['rejected, check without a name', 'Degraded', 'Rejected: failed checks unnamed check', null],
      ['succeeded, release not a map', 'Healthy', 'Succeeded', null],
      ['training, step is a number', 'Progressing', 'Training: Training', null],
    ]);
  });

  test('obj values with quotes, newlines and non-ASCII reach Lua unchanged', async () => {
    const message = 'line "one"\nline\ttwo \\ é ✓';
    const run = await runHealthScript(MODELRUN_SCRIPT, [{ name: 'odd', obj: { status: { phase: 'Failed', message } } }]);
    expect(run.results[0]).toEqual({ name: 'odd', ok: true, status: 'Degraded', message: `Failed: ${message}`, error: null });
  });
});

describe('the sandbox is what Argo CD gives a health script', () => {
  test('string.format fails', async () => {
    const run = await runInline('local hs = {}\nhs.status = "Healthy"\nhs.message = string.format("%d", 1)\nreturn hs\n');
    expect(run.exitCode).toBe(1);
    expect(run.results).toHaveLength(1);
    expect(run.results[0]?.ok).toBe(false);
    expect(run.results[0]?.status).toBeNull();
    expect(run.results[0]?.error).toMatch(/^script error: .*:3: attempt to index global 'string' \(a nil value\)$/);
  });

  test('string methods through the string metatable fail too', async () => {
    const run = await runInline('return { status = "Healthy", message = ("abc"):upper() }\n');
    expect(run.results[0]?.error).toMatch(/attempt to index a string value$/);
  });

  test('no string, math, os, io, debug, require or load* globals; base and table are there', async () => {
    const names = ['string', 'math', 'os', 'io', 'debug', 'require', 'package', 'module', 'load', 'loadstring',
      'loadfile', 'dofile', 'getfenv', 'setfenv', 'collectgarbage'];
    const run = await runInline(
      `local found = {}
for _, name in ipairs(${toLuaLiteral(names)}) do
  if _G[name] ~= nil then table.insert(found, name) end
end
local base = type(pairs) .. type(ipairs) .. type(tostring) .. type(tonumber) .. type(pcall) .. type(next) .. type(select)
return { status = "Healthy", message = base .. "|" .. table.concat(found, ",") }
`,
    );
    expect(run.results[0]).toEqual({
      name: 'probe', ok: true, status: 'Healthy', message: 'functionfunctionfunctionfunctionfunctionfunctionfunction|', error: null,
    });
  });

  test('obj is a copy per case: a script mutating it cannot affect the next case', async () => {
    const source = 'local seen = tostring(obj.status.mark)\nobj.status.mark = "set"\nreturn { status = "Healthy", message = seen }\n';
    const cases: HealthCase[] = [{ name: 'a', obj: { status: {} } }, { name: 'b', obj: { status: {} } }];
    const run = await runInline(source, cases);
    expect(run.results.map((r) => r.message)).toEqual(['nil', 'nil']);
  });

  test('a script running past 1 s is stopped like Argo CD does', async () => {
    const run = await runInline('while true do end\n');
    expect(run.results[0]?.error).toMatch(/timeout: health script ran longer than 1 s$/);
  });

  test('an invalid status code is an error, not a pass', async () => {
    const run = await runInline('return { status = "Fine", message = "x" }\n', [
      { name: 'probe', obj: {}, expected: { status: 'Healthy', message: 'x' } },
    ]);
    expect(run.exitCode).toBe(1);
    expect(run.results[0]?.error).toBe('invalid health status: Fine');
  });

  test('a wrong expectation makes the runner fail the case', async () => {
    const run = await runHealthScript(NVJ_SCRIPT, [
      { name: 'no status', obj: {}, expected: { status: 'Healthy', message: 'Waiting for the operator' } },
    ]);
    expect(run.exitCode).toBe(1);
    expect(run.results).toEqual([
      { name: 'no status', ok: false, status: 'Progressing', message: 'Waiting for the operator', error: null },
    ]);
  });

  test('the shipped scripts name no library Argo CD leaves closed', async () => {
    for (const script of [NVJ_SCRIPT, MODELRUN_SCRIPT]) {
      const code = (await readFile(script, 'utf8'))
        .split('\n')
        .filter((line) => !line.trimStart().startsWith('--'))
        .join('\n');
      expect(code).not.toMatch(/\b(string|math|os|io|debug|table)\s*\.|\brequire\b|\bload(string|file)?\s*\(|:\s*\w+\s*\(/);
    }
  });
});
