import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PYTHON, TEST_JOBS_DIR, removeDir, runScript, tempDir } from './run-script.ts';

type Check = { name: string; ok: boolean; message: string; observed: unknown };
type Probe = { rows: number[][]; expected: unknown[] };

const CHECK_NAMES = ['exists', 'min-bytes', 'sha256', 'load', 'has-predict', 'predict', 'output-shape', 'output-values'];

function python(args: string[], env: Record<string, string>, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin', PYTHONDONTWRITEBYTECODE: '1', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
    child.stdin?.end(input ?? '');
  });
}

let fixtures: string;
const dir = (name: string): string => path.join(fixtures, name);

beforeAll(async () => {
  fixtures = tempDir('gate-fixtures-');
  await python([path.join(TEST_JOBS_DIR, 'train_fixture.py'), fixtures], { PYTHONPATH: TEST_JOBS_DIR });
});

afterAll(() => removeDir(fixtures));

const labelEnv = (name: string, over: Record<string, string> = {}): Record<string, string> => ({
  MODEL_DIR: dir(name), FEATURES: '45', OUTPUT_KIND: 'label', LABELS: '[1,-1]', MIN_BYTES: '1024', ...over,
});
const regressionEnv = (name: string, over: Record<string, string> = {}): Record<string, string> => ({
  MODEL_DIR: dir(name), FEATURES: '5', OUTPUT_KIND: 'regression', OUTPUT_WIDTH: '5', MIN_BYTES: '1024', ...over,
});

async function gate(env: Record<string, string>) {
  const run = await runScript('gate', env);
  const checks = (run.result['checks'] ?? []) as Check[];
  return { ...run, checks, failed: checks.filter((c) => !c.ok).map((c) => c.name) };
}

describe('gate.py on good models', () => {
  test('anomaly-detector (45 features, labels 1/-1) passes every check; probe shrinks to fit 4 KiB', async () => {
    const run = await gate(labelEnv('anomaly-detector'));
    expect(run.code).toBe(0);
    expect(run.result['ok']).toBe(true);
    expect(run.checks.map((c) => c.name)).toEqual(CHECK_NAMES);
    expect(run.failed).toEqual([]);
    expect(run.resultBytes).toBeLessThanOrEqual(4096);
    expect(run.result['truncated']).toBe(true);
    const probe = run.result['probe'] as Probe;
    expect(probe.rows.length).toBeGreaterThanOrEqual(1);
    expect(probe.rows.length).toBeLessThan(8);
    expect(probe.expected.length).toBe(probe.rows.length);
    for (const row of probe.rows) expect(row.length).toBe(45);
    for (const value of probe.expected) expect([1, -1]).toContain(value);
    expect(run.result['sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(run.checks[2]?.observed).toBe(run.result['sha256']);
    expect(typeof run.result['loadSeconds']).toBe('number');
    expect(run.result['python']).toMatch(/^3\.\d+\.\d+$/);
    expect(run.result['sklearn']).toMatch(/^\d+\.\d+/);
    expect(JSON.parse(run.stdout.trim())).toEqual(run.result);
  });

  test('predictive-analytics (5 in, 5 floats out) passes with all 8 probe rows', async () => {
    const run = await gate(regressionEnv('predictive-analytics'));
    expect(run.code).toBe(0);
    expect(run.result['ok']).toBe(true);
    expect(run.failed).toEqual([]);
    expect(run.result['truncated']).toBeUndefined();
    const probe = run.result['probe'] as Probe;
    expect(probe.rows.length).toBe(8);
    expect(probe.expected.length).toBe(8);
    for (const out of probe.expected as number[][]) {
      expect(out.length).toBe(5);
      for (const v of out) expect(Number.isFinite(v)).toBe(true);
    }
    expect(run.checks.find((c) => c.name === 'output-shape')?.observed).toEqual([8, 5]);
  });

  test('probe rows are default_rng(SEED).normal rounded to 6 decimals and reproduce the expected outputs', async () => {
    const run = await gate(regressionEnv('predictive-analytics', { SEED: '7', PROBE_ROWS: '3' }));
    const probe = run.result['probe'] as Probe;
    const check = `
import json, sys, joblib, numpy as np
probe = json.load(sys.stdin)
raw = np.random.default_rng(7).normal(size=(3, 5))
assert probe['rows'] == [[round(float(v), 6) for v in r] for r in raw], 'rows differ'
out = joblib.load(sys.argv[1]).predict(np.array(probe['rows']))
assert [[round(float(v), 9) for v in r] for r in out] == probe['expected'], 'expected differs'
print('reproduced')`;
    const stdout = await python(['-c', check, path.join(dir('predictive-analytics'), 'model.pkl')], {}, JSON.stringify(probe));
    expect(stdout.trim()).toBe('reproduced');
  });
});

describe('gate.py fails closed on bad models', () => {
  const after = (name: string): string[] => CHECK_NAMES.slice(CHECK_NAMES.indexOf(name));

  test('empty directory: every check fails', async () => {
    const run = await gate(labelEnv('empty'));
    expect(run.code).toBe(0);
    expect(run.result['ok']).toBe(false);
    expect(run.failed).toEqual(CHECK_NAMES);
    expect(run.checks.map((c) => c.message)).toEqual([
      `model.pkl not found in ${dir('empty')}`,
      'skipped: exists failed',
      'skipped: exists failed',
      'skipped: min-bytes failed',
      'skipped: load failed',
      'skipped: has-predict failed',
      'skipped: predict failed',
      'skipped: output-shape failed',
    ]);
    expect(run.result['bytes']).toBeNull();
    expect(run.result['sha256']).toBeNull();
    expect(run.result['probe']).toEqual({ rows: [], expected: [] });
  });

  test('below min-bytes: never unpickled (its tripwire stays untouched); sha256 still computed', async () => {
    const tripwire = path.join(fixtures, 'tiny-unpickled');
    const run = await gate(regressionEnv('tiny', { MIN_BYTES: '1024' }));
    expect(run.failed).toEqual(['min-bytes', ...after('load')]);
    expect(run.checks[1]?.message).toMatch(/^\d+ bytes < minimum 1024$/);
    expect(run.checks[2]?.ok).toBe(true);
    expect(existsSync(tripwire)).toBe(false);
    // Control: with the minimum met the same file IS unpickled, so the tripwire above was live.
    const control = await gate(regressionEnv('tiny', { MIN_BYTES: '1' }));
    expect(control.failed).toEqual(after('has-predict'));
    expect(existsSync(tripwire)).toBe(true);
  });

  test('truncated pickle: load fails', async () => {
    const run = await gate(labelEnv('truncated'));
    expect(run.failed).toEqual(after('load'));
    expect(run.checks[3]?.message).toMatch(/Error/);
    expect(run.result['loadSeconds']).toEqual(expect.any(Number));
  });

  test('a pickled dict: has-predict fails', async () => {
    const run = await gate(labelEnv('not-a-model'));
    expect(run.failed).toEqual(after('has-predict'));
    expect(run.checks[4]?.message).toBe('dict has no predict method');
  });

  test('model trained on 10 features, gated at 45: predict fails', async () => {
    const run = await gate(labelEnv('narrow'));
    expect(run.failed).toEqual(after('predict'));
    expect(run.checks[5]?.observed).toEqual({ features: 45, rows: 8, modelFeatures: 10 });
    expect(run.checks[5]?.message).toMatch(/^ValueError: X has 45 features/);
  });

  test('a custom estimator predicting NaN: output-values fails', async () => {
    const run = await gate(regressionEnv('nan-output', { MIN_BYTES: '1', PYTHONPATH: TEST_JOBS_DIR }));
    expect(run.failed).toEqual(['output-values']);
    expect(run.checks[7]?.message).toBe('40 of 40 outputs are not finite');
    expect(run.result['probe']).toEqual({ rows: [], expected: [] });
  });

  test('a custom estimator whose module is not importable: load fails', async () => {
    const run = await gate(regressionEnv('nan-output', { MIN_BYTES: '1' }));
    expect(run.failed).toEqual(after('load'));
    expect(run.checks[3]?.message).toMatch(/^ModuleNotFoundError: .*nan_estimator/);
  });

  test('labels outside LABELS: output-values fails', async () => {
    const run = await gate(labelEnv('anomaly-detector', { LABELS: '["normal","anomaly"]' }));
    expect(run.failed).toEqual(['output-values']);
    expect(run.checks[7]?.observed).toEqual([1]);
  });

  test('regression width differs from OUTPUT_WIDTH: output-shape fails', async () => {
    const run = await gate(regressionEnv('predictive-analytics', { OUTPUT_WIDTH: '3' }));
    expect(run.failed).toEqual(after('output-shape'));
    expect(run.checks[6]?.message).toBe('shape [8, 5], expected [8, 3]');
  });

  test('a label model gated as regression: output-shape fails', async () => {
    const run = await gate(labelEnv('anomaly-detector', { OUTPUT_KIND: 'regression', OUTPUT_WIDTH: '1' }));
    expect(run.failed).toEqual(after('output-shape'));
  });

  test('a symlinked model.pkl: exists fails', async () => {
    const run = await gate(labelEnv('symlink'));
    expect(run.failed).toEqual(CHECK_NAMES);
    expect(run.checks[0]?.message).toBe('model.pkl is a symlink');
  });

  test('an unpickle that hangs: load fails at MAX_LOAD_SECONDS and the script exits', async () => {
    const started = Date.now();
    const run = await gate(regressionEnv('slow', { MIN_BYTES: '1', MAX_LOAD_SECONDS: '0.5' }));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(run.code).toBe(0);
    expect(run.failed).toEqual(after('load'));
    expect(run.checks[3]?.message).toBe('load did not finish within 0.5s');
    expect(run.result['loadSeconds']).toBeNull();
  });
});

describe('gate.py usage errors', () => {
  test.each([
    [{ FEATURES: '0' }, 'usage: FEATURES must be in [1'],
    [{ FEATURES: 'many' }, 'usage: FEATURES must be an integer'],
    [{ OUTPUT_KIND: 'probability' }, 'usage: OUTPUT_KIND must be "label" or "regression"'],
    [{ LABELS: '' }, 'usage: LABELS must be a JSON list'],
    [{ LABELS: '[]' }, 'usage: LABELS must be a non-empty JSON list'],
    [{ MIN_BYTES: '' }, 'usage: MIN_BYTES is required'],
    [{ MODEL_DIR: 'relative/dir' }, 'usage: MODEL_DIR must be an absolute path'],
    [{ MODEL_DIR: '/mnt/models/../../etc' }, 'usage: MODEL_DIR must be an absolute path'],
    [{ MAX_LOAD_SECONDS: '-1' }, 'usage: MAX_LOAD_SECONDS must be a positive number'],
    [{ OUTPUT_KIND: 'regression' }, 'usage: OUTPUT_WIDTH is required'],
  ])('%j exits 2 with a JSON error', async (over, message) => {
    const run = await gate(labelEnv('anomaly-detector', over));
    expect(run.code).toBe(2);
    expect(run.result['ok']).toBe(false);
    expect(String(run.result['error']).startsWith(message)).toBe(true);
  });
});
