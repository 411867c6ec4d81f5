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
