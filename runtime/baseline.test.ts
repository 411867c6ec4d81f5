import { baselineSummary } from './baseline.ts';

// The one-line summary `mlops runs` and the rejection message show (docs/gate.md).
const thresholds = { minAgreement: 0.9, maxRateChange: 0.1, maxRelativeChange: 0.5, maxMetricRegression: 0.1 };
const base = { reference: { rows: 400, targets: true }, trigger: 'schedule', advisory: [], thresholds };

describe('baselineSummary', () => {
  test.each<[string, unknown, string | undefined]>([
    ['no report', undefined, undefined],
    ['a report without a baseline', { ok: true }, undefined],
    ['reference data unusable', { baseline: { skipped: 'no comparison: FileNotFoundError: x' } }, 'baseline: no comparison: FileNotFoundError: x'],
    ['nothing served', { baseline: { ...base, served: { state: 'none', release: null } } }, 'baseline: nothing served, comparison skipped (400 reference rows with targets)'],
    ['a placeholder', { baseline: { ...base, served: { state: 'placeholder', release: 'r0' } } }, 'baseline: served release r0 is a placeholder, comparison skipped'],
    ['label model against a release', {
      baseline: { ...base, served: { state: 'release', release: 'r0' }, comparison: { agreement: 0.55, candidateRate: 0.56, servedRate: 0.11, rateChange: 0.45 }, metricChanges: { precision: 0.3, recall: -0.15 } },
    }, 'baseline vs served release r0 on 400 reference rows with targets: agreement 0.55 (min 0.9), anomaly rate 0.11 → 0.56 (max change 0.1), worst metric regression 0.3 (max 0.1)'],
    ['regression against an archived release, drift', {
      baseline: { ...base, advisory: ['baseline-change'], served: { state: 'archived', release: null }, comparison: { meanAbsChange: [0.2, 0.3], relativeChange: [0.4, 1.2] } },
    }, 'baseline vs the served model (archived) on 400 reference rows with targets: largest relative change 1.2 (max 0.5), metric regression skipped (archived release, no metrics); advisory: baseline-change'],
  ])('%s', (_name, report, expected) => {
    expect(baselineSummary(report)).toBe(expected);
  });
});

describe('mlops runs shows the comparison', () => {
  test('the timeline carries the baseline line under the gate verdict', async () => {
    const { timeline } = await import('../cli/status.ts');
    const text = timeline({
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
      metadata: { name: 'anomaly-detector-r1', creationTimestamp: '2026-11-22T09:00:00Z' },
      spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'k', profile: 'cpu' },
      status: {
        phase: 'Rejected',
        gate: {
          verdict: 'rejected', checks: [{ name: 'output-values', ok: true }, { name: 'baseline-agreement', ok: false }],
          report: { baseline: { ...base, served: { state: 'release', release: 'r0' }, comparison: { agreement: 0.55, candidateRate: 0.56, servedRate: 0.11, rateChange: 0.45 } } },
        },
      },
    });
    expect(text.split('\n').slice(2, 4)).toEqual([
      '  gate verdict rejected: output-values, baseline-agreement FAILED',
      '  baseline vs served release r0 on 400 reference rows with targets: agreement 0.55 (min 0.9), anomaly rate 0.11 → 0.56 (max change 0.1)',
    ]);
  });
});

describe('baselineStatus (status.gate.baseline, read by kube-state-metrics)', () => {
  const checks = (failed: string[] = []) => ['baseline-agreement', 'baseline-rate', 'baseline-change', 'baseline-metrics'].map((name) => ({ name, ok: !failed.includes(name) }));

  test('a label model against a release: each check with its number and threshold, both models\' metrics', async () => {
    const { baselineStatus } = await import('./baseline.ts');
    const report = {
      baseline: {
        ...base, served: { state: 'release', release: 'r0' },
        candidate: { precision: 0.08, recall: 1, anomalyRate: 0.6275 }, servedMetrics: { precision: 1, recall: 0.35, anomalyRate: 0.0175 },
        comparison: { agreement: 0.39, candidateRate: 0.6275, servedRate: 0.0175, rateChange: 0.61 }, metricChanges: { precision: 0.92, recall: -0.65 },
      },
    };
    const label = checks(['baseline-agreement', 'baseline-rate', 'baseline-metrics']).filter((c) => c.name !== 'baseline-change');
    expect(baselineStatus(report, label)).toEqual({
      served: 'release', release: 'r0', referenceRows: 400, trigger: 'schedule',
      checks: [
        { check: 'baseline-agreement', measure: 'agreement', value: 0.39, threshold: 0.9, ok: false },
        { check: 'baseline-rate', measure: 'rateChange', value: 0.61, threshold: 0.1, ok: false },
        { check: 'baseline-metrics', measure: 'metricRegression', value: 0.92, worst: 'precision', threshold: 0.1, ok: false },
      ],
      metrics: [
        { model: 'candidate', metric: 'precision', value: 0.08 }, { model: 'candidate', metric: 'recall', value: 1 }, { model: 'candidate', metric: 'anomalyRate', value: 0.6275 },
        { model: 'served', metric: 'precision', value: 1 }, { model: 'served', metric: 'recall', value: 0.35 }, { model: 'served', metric: 'anomalyRate', value: 0.0175 },
      ],
    });
  });

  test('regression: per-output metrics, the largest relative change, the worst metric named; advisory on drift', async () => {
    const { baselineStatus } = await import('./baseline.ts');
    const report = {
      baseline: {
        ...base, trigger: 'drift', advisory: ['baseline-change'], served: { state: 'release', release: 'r0' },
        thresholds: { minAgreement: null, maxRateChange: null, maxRelativeChange: 0.25, maxMetricRegression: 0.5 },
        candidate: { mae: [0.5, 0.6], rmse: [0.7, 0.8], r2: [0.1, 0.2] }, servedMetrics: { mae: [0.1, 0.2], rmse: [0.2, 0.3], r2: [0.9, 0.8] },
        comparison: { meanAbsChange: [0.4, 0.5], relativeChange: [0.9, 1.025] }, metricChanges: { mae: [4, 2], rmse: [2.5, 1.667], r2: [0.8, 0.6] },
      },
    };
    const status = baselineStatus(report, checks(['baseline-metrics']).filter((c) => c.name === 'baseline-change' || c.name === 'baseline-metrics'));
    expect(status?.checks).toEqual([
      { check: 'baseline-change', measure: 'relativeChange', value: 1.025, threshold: 0.25, advisory: true, ok: true },
      { check: 'baseline-metrics', measure: 'metricRegression', value: 4, worst: 'mae[0]', threshold: 0.5, ok: false },
    ]);
    expect(status?.metrics?.slice(0, 2)).toEqual([{ model: 'candidate', metric: 'mae', output: '0', value: 0.5 }, { model: 'candidate', metric: 'mae', output: '1', value: 0.6 }]);
    expect(status?.metrics).toHaveLength(12);
  });

  test('nothing served, an archived release, unusable reference data, no comparison at all', async () => {
    const { baselineStatus } = await import('./baseline.ts');
    const label = checks().filter((c) => c.name !== 'baseline-change');
    expect(baselineStatus({ baseline: { ...base, served: { state: 'none', release: null }, candidate: { precision: 1, recall: 1, anomalyRate: 0.05 } } }, label)).toEqual({
      served: 'none', referenceRows: 400, trigger: 'schedule',
      checks: [
        { check: 'baseline-agreement', measure: 'agreement', threshold: 0.9, ok: true },
        { check: 'baseline-rate', measure: 'rateChange', threshold: 0.1, ok: true },
        { check: 'baseline-metrics', measure: 'metricRegression', threshold: 0.1, ok: true },
      ],
      metrics: [{ model: 'candidate', metric: 'precision', value: 1 }, { model: 'candidate', metric: 'recall', value: 1 }, { model: 'candidate', metric: 'anomalyRate', value: 0.05 }],
    });
    // Archived: predictions compared, the metric regression (never vetted) left out.
    const archived = baselineStatus({ baseline: { ...base, served: { state: 'archived', release: null }, comparison: { agreement: 0.98, candidateRate: 0.05, servedRate: 0.06, rateChange: -0.01 }, metricChanges: { precision: 0.5 } } }, label);
    expect(archived?.checks?.map((c) => [c.check, c.value])).toEqual([['baseline-agreement', 0.98], ['baseline-rate', 0.01], ['baseline-metrics', undefined]]);
    expect(archived?.release).toBeUndefined();
    expect(baselineStatus({ baseline: { skipped: 'no comparison: FileNotFoundError: x' } }, label)).toEqual({ skipped: 'no comparison: FileNotFoundError: x' });
    expect(baselineStatus({ ok: true }, label)).toBeUndefined();
  });
});
