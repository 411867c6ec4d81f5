import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findModel, loadCatalog } from '../../runtime/catalog.ts';
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

// ---------------------------------------------------------------- baseline comparison and serving runtime

describe('gate.py against the served release (BASELINE) and the serving runtime (SERVING_SKLEARN)', () => {
  let models: string;
  let roots: string;
  let rootCount = 0;
  const model = (name: string): string => path.join(models, name);
  const reference = (name: string): string => path.join(models, 'reference', name);

  beforeAll(async () => {
    models = tempDir('gate-baseline-');
    roots = tempDir('gate-roots-');
    await python([path.join(TEST_JOBS_DIR, 'train_baseline_fixture.py'), models], {});
  }, 120_000);

  afterAll(() => {
    removeDir(models);
    removeDir(roots);
  });

  type Served = { model: string; servedCase?: string; release?: Record<string, unknown>; bare?: boolean };
  /** A PVC root laid out like config/jobs/promote.py leaves it: <model>/RELEASE, .releases/<model>/r0/. */
  function root(served: Served): string {
    const dirRoot = path.join(roots, `root-${rootCount++}`);
    mkdirSync(path.join(dirRoot, served.model), { recursive: true });
    if (served.servedCase === undefined) return dirRoot;
    if (served.bare) {
      copyFileSync(path.join(model(served.servedCase), 'model.pkl'), path.join(dirRoot, served.model, 'model.pkl'));
      return dirRoot;
    }
    const release = path.join(dirRoot, '.releases', served.model, 'r0');
    mkdirSync(release, { recursive: true });
    copyFileSync(path.join(model(served.servedCase), 'model.pkl'), path.join(release, 'model.pkl'));
    writeFileSync(path.join(release, 'release.json'), JSON.stringify({ run: 'r0', ...served.release }));
    writeFileSync(path.join(dirRoot, served.model, 'RELEASE'), 'r0\n');
    return dirRoot;
  }

  const anomaly = (candidate: string, served: Served | undefined, baseline: Record<string, unknown>, over: Record<string, string> = {}) => gate({
    MODEL_DIR: model(candidate), FEATURES: '45', OUTPUT_KIND: 'label', LABELS: '[1,-1]', MIN_BYTES: '1024',
    BASELINE: JSON.stringify(baseline), REFERENCE_DATA: reference('anomaly.npz'), MODEL: 'anomaly-detector',
    ROOT: root(served ?? { model: 'anomaly-detector' }), ...over,
  });
  const predictive = (candidate: string, served: Served | undefined, baseline: Record<string, unknown>, over: Record<string, string> = {}) => gate({
    MODEL_DIR: model(candidate), FEATURES: '5', OUTPUT_KIND: 'regression', OUTPUT_WIDTH: '5', MIN_BYTES: '100',
    BASELINE: JSON.stringify(baseline), REFERENCE_DATA: reference('predictive.csv'), MODEL: 'predictive-analytics',
    ROOT: root(served ?? { model: 'predictive-analytics' }), ...over,
  });
  const check = (run: { checks: Check[] }, name: string): Check | undefined => run.checks.find((c) => c.name === name);
  type Metrics = { mae: number[]; rmse: number[]; r2: number[]; precision: number; recall: number; anomalyRate: number };
  type Baseline = {
    served: unknown; reference: unknown; candidate: Metrics; servedMetrics: Metrics;
    comparison: { relativeChange: number[] } & Record<string, unknown>; metricChanges: { mae: number[] } & Record<string, unknown>;
  };
  // The shipped catalog's defaults (config/models.yaml; why these values: docs/gate.md).
  const catalog = loadCatalog('config/models.yaml');
  const LABEL_DEFAULTS = findModel(catalog, 'anomaly-detector')?.gate.baseline ?? {};
  const REGRESSION_DEFAULTS = findModel(catalog, 'predictive-analytics')?.gate.baseline ?? {};

  test('a better regression model is approved; the numbers for both models are reported', async () => {
    const run = await predictive('predictive-good', { model: 'predictive-analytics', servedCase: 'predictive-weak' }, REGRESSION_DEFAULTS);
    expect(run.failed).toEqual([]);
    expect(run.result['ok']).toBe(true);
    expect(run.checks.map((c) => c.name)).toEqual([...CHECK_NAMES, 'reference-data', 'baseline-change', 'baseline-metrics']);
    const baseline = run.result['baseline'] as Baseline;
    expect(baseline['served']).toEqual({ state: 'release', release: 'r0' });
    expect(baseline['reference']).toEqual({ rows: 300, targets: true });
    for (let j = 0; j < 5; j++) {
      expect(baseline['candidate'].r2[j]).toBeGreaterThan(baseline['servedMetrics'].r2[j] ?? NaN);
      expect(baseline['candidate'].mae[j]).toBeLessThan(baseline['servedMetrics'].mae[j] ?? NaN);
      expect(baseline['metricChanges'].mae[j]).toBeLessThan(0);
      expect(baseline['comparison'].relativeChange[j]).toBeLessThan(0.5);
    }
    expect(REGRESSION_DEFAULTS).toEqual({ maxRelativeChange: 0.5, maxMetricRegression: 0.5 });
    expect(check(run, 'baseline-metrics')?.message).toMatch(/^worst regression r2\[\d\] -0\.\d+, maxMetricRegression met 0\.5$/);
    expect(run.resultBytes).toBeLessThanOrEqual(4096);
  });

  test('the same model as the one served is approved with full agreement', async () => {
    expect(LABEL_DEFAULTS).toEqual({ minAgreement: 0.9, maxRateChange: 0.1, maxMetricRegression: 0.1 });
    const run = await anomaly('anomaly-good', { model: 'anomaly-detector', servedCase: 'anomaly-good' }, LABEL_DEFAULTS);
    expect(run.failed).toEqual([]);
    const baseline = run.result['baseline'] as Baseline;
    expect(baseline['comparison']).toEqual({ agreement: 1, candidateRate: baseline['servedMetrics'].anomalyRate, servedRate: baseline['servedMetrics'].anomalyRate, rateChange: 0 });
    expect(baseline['metricChanges']).toEqual({ precision: 0, recall: 0 });
    expect(baseline['candidate'].recall).toBeGreaterThan(0.5);
    expect(check(run, 'baseline-agreement')?.message).toBe('labels agree on 1 of rows, minAgreement met 0.9');
    expect(run.resultBytes).toBeLessThanOrEqual(4096);
  });

  test('a detector that flags half of normal traffic is rejected on agreement (only minAgreement set)', async () => {
    const run = await anomaly('anomaly-worse', { model: 'anomaly-detector', servedCase: 'anomaly-good' }, { minAgreement: 0.9 });
    expect(run.failed).toEqual(['baseline-agreement']);
    expect(run.result['ok']).toBe(false);
    expect(check(run, 'baseline-agreement')?.message).toMatch(/^labels agree on 0\.\d+ of rows, minAgreement NOT met: 0\.9$/);
    expect(check(run, 'baseline-agreement')?.observed).toBeLessThan(0.7);
    expect(check(run, 'baseline-rate')?.message).toMatch(/\(no maxRateChange set\)$/);
  });

  test('with every threshold the worse detector fails agreement, rate and metrics', async () => {
    const run = await anomaly('anomaly-worse', { model: 'anomaly-detector', servedCase: 'anomaly-good' }, LABEL_DEFAULTS);
    expect(run.failed).toEqual(['baseline-agreement', 'baseline-rate', 'baseline-metrics']);
    expect(check(run, 'baseline-metrics')?.message).toMatch(/^worst regression precision 0\.\d+, maxMetricRegression NOT met: 0\.1$/);
  });

  test('a regression model predicting a constant is rejected on a metric (only maxMetricRegression set)', async () => {
    const run = await predictive('predictive-constant', { model: 'predictive-analytics', servedCase: 'predictive-good' }, { maxMetricRegression: 0.1 });
    expect(run.failed).toEqual(['baseline-metrics']);
    expect(check(run, 'baseline-metrics')?.message).toMatch(/^worst regression (mae|rmse)\[\d\] [0-9.]+, maxMetricRegression NOT met: 0\.1$/);
    const baseline = run.result['baseline'] as Baseline;
    for (const r2 of baseline['candidate'].r2) expect(r2).toBeLessThan(0.05);
    // At the shipped defaults too (the metric threshold is 0.5 for this model): MAE rises by far more.
    const shipped = await predictive('predictive-constant', { model: 'predictive-analytics', servedCase: 'predictive-good' }, REGRESSION_DEFAULTS);
    expect(shipped.failed).toContain('baseline-metrics');
    expect(check(shipped, 'baseline-metrics')?.message).toMatch(/^worst regression (mae|rmse)\[\d\] [0-9.]+, maxMetricRegression NOT met: 0\.5$/);
  });

  test('a drift-triggered run: the agreement checks are advisory, the metric check is not', async () => {
    const served = { model: 'anomaly-detector', servedCase: 'anomaly-good' };
    const drift = await anomaly('anomaly-worse', served, { minAgreement: 0.9, maxRateChange: 0.1 }, { TRIGGER: 'drift' });
    expect(drift.failed).toEqual([]);
    expect(drift.result['ok']).toBe(true);
    expect(check(drift, 'baseline-agreement')?.message).toMatch(/^advisory: labels agree on 0\.\d+ of rows, minAgreement NOT met: 0\.9$/);
    expect(check(drift, 'baseline-rate')?.message).toMatch(/^advisory: anomaly rate/);
    expect((drift.result['baseline'] as Record<string, unknown>)['advisory']).toEqual(['baseline-agreement', 'baseline-rate', 'baseline-change']);
    // The metric check stays required on drift.
    const metric = await anomaly('anomaly-worse', served, LABEL_DEFAULTS, { TRIGGER: 'drift' });
    expect(metric.failed).toEqual(['baseline-metrics']);
    // The catalog can make agreement required for drift too; a scheduled run is never advisory by default.
    const strict = await anomaly('anomaly-worse', served, { minAgreement: 0.9, triggers: { drift: { advisory: [] } } }, { TRIGGER: 'drift' });
    expect(strict.failed).toEqual(['baseline-agreement']);
    const scheduled = await anomaly('anomaly-worse', served, { minAgreement: 0.9 }, { TRIGGER: 'schedule' });
    expect(scheduled.failed).toEqual(['baseline-agreement']);
  });

  test('nothing served: the comparison is skipped and the report says so', async () => {
    const run = await anomaly('anomaly-worse', undefined, LABEL_DEFAULTS);
    expect(run.failed).toEqual([]);
    for (const name of ['baseline-agreement', 'baseline-rate', 'baseline-metrics']) expect(check(run, name)?.message).toBe('skipped: nothing served');
    const baseline = run.result['baseline'] as Record<string, unknown>;
    expect(baseline['served']).toEqual({ state: 'none', release: null });
    expect(baseline['comparison']).toBeUndefined();
    expect(baseline['candidate']).toEqual(expect.objectContaining({ anomalyRate: expect.any(Number) }));
  });

  test('a placeholder served (storage bootstrap): the comparison is skipped and said', async () => {
    const run = await anomaly('anomaly-worse', { model: 'anomaly-detector', servedCase: 'anomaly-good', release: { placeholder: true } }, LABEL_DEFAULTS);
    expect(run.failed).toEqual([]);
    expect(check(run, 'baseline-agreement')?.message).toBe('skipped: the served release r0 is a placeholder');
    expect((run.result['baseline'] as Record<string, unknown>)['served']).toEqual({ state: 'placeholder', release: 'r0' });
  });

  test('an archived release without metrics: predictions compared, metric regression skipped and said', async () => {
    const archived = { model: 'anomaly-detector', servedCase: 'anomaly-good', release: { archived: true } };
    const same = await anomaly('anomaly-good', archived, LABEL_DEFAULTS);
    expect(same.failed).toEqual([]);
    expect(check(same, 'baseline-metrics')?.message).toBe('skipped: the served release r0 is archived from before the lifecycle (no metrics)');
    expect(check(same, 'baseline-agreement')?.message).toBe('labels agree on 1 of rows, minAgreement met 0.9');
    // Predictions are really compared: the worse detector still fails agreement against the archived one.
    const worse = await anomaly('anomaly-worse', archived, LABEL_DEFAULTS);
    expect(worse.failed).toEqual(['baseline-agreement', 'baseline-rate']);
    // A served <model>/model.pkl without RELEASE (never promoted by the lifecycle) counts as archived.
    const bare = await anomaly('anomaly-worse', { model: 'anomaly-detector', servedCase: 'anomaly-good', bare: true }, LABEL_DEFAULTS);
    expect(bare.failed).toEqual(['baseline-agreement', 'baseline-rate']);
    expect((bare.result['baseline'] as Record<string, unknown>)['served']).toEqual({ state: 'archived', release: null });
  });

  test('a required metric check without targets in the reference data fails (missing evidence)', async () => {
    const served = { model: 'anomaly-detector', servedCase: 'anomaly-good' };
    const run = await anomaly('anomaly-good', served, LABEL_DEFAULTS, { REFERENCE_DATA: reference('anomaly-unlabelled.npz') });
    expect(run.failed).toEqual(['baseline-metrics']);
    expect(check(run, 'baseline-metrics')?.message).toBe('no targets in the reference data: metric regression cannot be checked');
    const unchecked = await anomaly('anomaly-good', served, { minAgreement: 0.9 }, { REFERENCE_DATA: reference('anomaly-unlabelled.npz') });
    expect(unchecked.failed).toEqual([]);
  });

  test('missing reference data fails every baseline check', async () => {
    const run = await anomaly('anomaly-good', { model: 'anomaly-detector', servedCase: 'anomaly-good' }, LABEL_DEFAULTS, { REFERENCE_DATA: reference('absent.npz') });
    expect(run.failed).toEqual(['reference-data', 'baseline-agreement', 'baseline-rate', 'baseline-metrics']);
    expect(check(run, 'reference-data')?.message).toMatch(/^FileNotFoundError/);
    expect(run.result['baseline']).toEqual({ skipped: expect.stringMatching(/^no comparison: FileNotFoundError/) });
  });

  test('a notebook metrics.json is reported, never required', async () => {
    const candidate = path.join(models, 'with-metrics');
    mkdirSync(candidate, { recursive: true });
    copyFileSync(path.join(model('anomaly-good'), 'model.pkl'), path.join(candidate, 'model.pkl'));
    writeFileSync(path.join(candidate, 'metrics.json'), JSON.stringify({ metrics: { precision: 0.91, recall: 0.8, note: 'x' } }));
    const run = await anomaly('with-metrics', undefined, LABEL_DEFAULTS);
    expect(run.failed).toEqual([]);
    expect(run.result['notebookMetrics']).toEqual({ metrics: { precision: 0.91, recall: 0.8 } });
  });

  test('a model pickled with an incompatible scikit-learn version is rejected by serving-runtime', async () => {
    const control = await gate({ ...labelEnv('anomaly-detector'), MODEL_DIR: model('anomaly-good'), SERVING_SKLEARN: '0.0' });
    const running = String(control.result['sklearn']);
    const servingMinor = running.split('.').slice(0, 2).join('.');
    const ok = await gate({ ...labelEnv('anomaly-detector'), MODEL_DIR: model('anomaly-good'), SERVING_SKLEARN: servingMinor });
    expect(ok.failed).toEqual([]);
    expect(ok.result['runtime']).toEqual({ pickled: [running], serving: servingMinor, gate: running });
    // Control above: the same model against a serving runtime of another minor version fails.
    expect(control.failed).toEqual(['serving-runtime']);
    const old = await gate({ ...labelEnv('anomaly-detector'), MODEL_DIR: model('anomaly-old-sklearn'), SERVING_SKLEARN: servingMinor });
    expect(old.failed).toEqual(['serving-runtime']);
    expect(check(old, 'serving-runtime')?.observed).toEqual(['0.24.2']);
    expect(check(old, 'serving-runtime')?.message).toBe(`pickled with scikit-learn 0.24.2; the serving runtime has ${servingMinor} (pickles load only under the same major.minor)`);
  });

  test.each([
    [{ BASELINE: '[1]' }, 'usage: BASELINE must be a JSON object'],
    [{ BASELINE: '{"minAgreement":-1}' }, 'usage: BASELINE minAgreement must be a number >= 0'],
    [{ BASELINE: '{}', REFERENCE_DATA: 'rel.npz' }, 'usage: REFERENCE_DATA must be an absolute path'],
    [{ SERVING_SKLEARN: 'latest' }, 'usage: SERVING_SKLEARN must be a version'],
  ])('%j exits 2', async (over, message) => {
    const run = await gate({ ...labelEnv('anomaly-detector'), ROOT: '/tmp', MODEL: 'anomaly-detector', REFERENCE_DATA: '/tmp/x.npz', ...over });
    expect(run.code).toBe(2);
    expect(String(run.result['error']).startsWith(message)).toBe(true);
  });
});
