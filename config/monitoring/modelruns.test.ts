// The ModelRun metrics from real runs: the whole system runs two scenarios locally (real functions, local broker,
// Kubernetes API emulator, simulated controllers), then the ModelRuns it left are turned into the series
// kube-state-metrics would serve for our config (ksm-eval.ts), and those series go through the shipped rules in
// promtool. This catches fields the config reads but the steps never write, and label mismatches between what
// kube-state-metrics produces and what the rules join on.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { CloudEvent } from 'cloudevents';
import { parse as parseYaml, stringify } from 'yaml';
import { DEV_NAMESPACE, startLocal } from '../../dev/local.ts';
import { EventTypes } from '../../events/index.ts';
import { loadCatalog } from '../../runtime/catalog.ts';
import { isTerminalPhase, type ModelRun } from '../../runtime/resources.ts';
import { evaluate, type KsmResource, type Sample } from './ksm-eval.ts';
import { RULES_FILE, type RuleGroup } from './rules.ts';

const run = promisify(execFile);
const catalog = loadCatalog('config/models.yaml');
const MODELS = catalog.models.map((m) => m.name);
const [resource] = (parseYaml(readFileSync('config/monitoring/kube-state-metrics/modelrun-metrics.yaml', 'utf8')) as { spec: { resources: KsmResource[] } }).spec.resources;
const groups = (parseYaml(readFileSync(RULES_FILE, 'utf8')) as { spec: { groups: RuleGroup[] } }).spec.groups;
const seconds = (t: string | undefined): number => Math.floor(Date.parse(t ?? '') / 1000);

async function runsOf(scenario: string): Promise<ModelRun[]> {
  const local = await startLocal({ catalog, scenario, env: {}, deliveries: 1 });
  try {
    for (const model of MODELS) {
      await local.broker.send(new CloudEvent({ type: EventTypes.trainingRequested, source: '/monitoring-test', id: `${scenario}-${model}`, datacontenttype: 'application/json', data: { model, trigger: 'manual', requestedBy: 'monitoring-test' } }));
    }
    const list = (): ModelRun[] => local.emulator.store.list({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { namespace: DEV_NAMESPACE }) as unknown as ModelRun[];
    const end = Date.now() + 120_000;
    while (!MODELS.every((m) => list().some((r) => r.spec.model === m && isTerminalPhase(r.status?.phase)))) {
      if (Date.now() > end) throw new Error(`${scenario}: runs not terminal in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await local.broker.idle(30_000);
    return structuredClone(list());
  } finally {
    await local.close();
  }
}

describe('ModelRun metrics from real runs', () => {
  let runs: ModelRun[];
  let samples: Sample[];
  const dirs: string[] = [];
  const series = (name: string, run?: string): Sample[] => samples.filter((s) => s.name === name && (run === undefined || s.labels.modelrun === run));

  beforeAll(async () => {
    runs = [...await runsOf('happy-gpu'), ...await runsOf('verify-fail-rollback')];
    if (!resource) throw new Error('no resource in the kube-state-metrics config');
    samples = evaluate(resource, runs);
  }, 300_000);
  afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

  test('the scenarios left Succeeded runs (with a copy step) and RolledBack runs', () => {
    expect(runs.map((r) => `${r.spec.model} ${r.status?.phase ?? '-'}`).sort()).toEqual(MODELS.flatMap((m) => [`${m} RolledBack`, `${m} Succeeded`]).sort());
  });

  test('every run has its identity labels and exactly one current phase', () => {
    for (const r of runs) {
      const name = r.metadata.name ?? '';
      const phase = series('mlops_modelrun_phase', name);
      expect(phase).toHaveLength(10);
      expect(phase.filter((s) => s.value === 1).map((s) => s.labels.phase)).toEqual([r.status?.phase]);
      expect(phase[0]?.labels).toMatchObject({ namespace: DEV_NAMESPACE, modelrun: name, model: r.spec.model, customresource_kind: 'ModelRun' });
      expect(series('mlops_modelrun_info', name)[0]?.labels).toMatchObject({ trigger: 'manual', profile: r.spec.profile });
      expect(series('mlops_modelrun_deadline_timestamp_seconds', name).map((s) => s.labels.deadline).sort()).toEqual(['run', 'step']);
    }
  });

  test('a Succeeded run carries trained-at, promoted-at and finished times in order, every step timed, the approved verdict', () => {
    for (const r of runs.filter((x) => x.status?.phase === 'Succeeded')) {
      const name = r.metadata.name ?? '';
      const one = (metric: string): number => { const s = series(metric, name); expect(s).toHaveLength(1); return s[0]?.value ?? Number.NaN; };
      const trained = one('mlops_modelrun_trained_timestamp_seconds');
      const promoted = one('mlops_modelrun_promoted_timestamp_seconds');
      const finished = one('mlops_modelrun_finished_timestamp_seconds');
      expect(trained).toBe(seconds(r.status?.steps?.training?.finished));
      expect(trained <= promoted && promoted <= finished).toBe(true);
      const started = new Map(series('mlops_modelrun_step_started_timestamp_seconds', name).map((s) => [s.labels.step ?? '', s.value]));
      const ended = series('mlops_modelrun_step_finished_timestamp_seconds', name);
      expect(ended.map((s) => s.labels.step).sort()).toEqual(['copy', 'gate', 'promote', 'training', 'verify']);
      for (const s of ended) {
        expect(s.labels.outcome).toBeTruthy();
        expect(s.value).toBeGreaterThanOrEqual(started.get(s.labels.step ?? '') ?? Number.POSITIVE_INFINITY);
      }
      expect(series('mlops_modelrun_gate_verdict', name).map((s) => `${s.labels.verdict ?? ''}=${s.value}`).sort()).toEqual(['approved=1', 'rejected=0']);
      expect(series('mlops_modelrun_gate_check', name).length).toBeGreaterThan(0);
      expect(series('mlops_modelrun_artifact_bytes', name)[0]?.value ?? 0).toBeGreaterThan(0);
      expect(series('mlops_modelrun_info', name)[0]?.labels.release).toBe(name);
    }
  });

  test('the gate compared every run with the served release through the catalog defaults; the series carry the numbers', () => {
    for (const r of runs) {
      const name = r.metadata.name ?? '';
      const model = catalog.models.find((m) => m.name === r.spec.model);
      const label = model?.output.kind === 'label';
      // happy-gpu starts with nothing served; verify-fail-rollback serves a seeded release first.
      const state = r.status?.phase === 'RolledBack' ? 'release' : 'none';
      expect(series('mlops_modelrun_gate_baseline_served', name).filter((s) => s.value === 1).map((s) => s.labels.served)).toEqual([state]);
      expect(series('mlops_modelrun_gate_baseline_reference_rows', name).map((s) => s.value)).toEqual([400]);
      const measures = label ? ['agreement', 'metricRegression', 'rateChange'] : ['metricRegression', 'relativeChange'];
      const thresholds = new Map(series('mlops_modelrun_gate_baseline_threshold', name).map((s) => [s.labels.measure ?? '', s.value]));
      const b = model?.gate.baseline;
      expect(Object.fromEntries(thresholds)).toEqual(label
        ? { agreement: b?.minAgreement, rateChange: b?.maxRateChange, metricRegression: b?.maxMetricRegression }
        : { relativeChange: b?.maxRelativeChange, metricRegression: b?.maxMetricRegression });
      expect(series('mlops_modelrun_gate_baseline_check', name).map((s) => `${s.labels.check ?? ''}=${s.value}`).sort())
        .toEqual((label ? ['baseline-agreement', 'baseline-metrics', 'baseline-rate'] : ['baseline-change', 'baseline-metrics']).map((c) => `${c}=1`));
      const values = series('mlops_modelrun_gate_baseline_value', name);
      const sides = new Set(series('mlops_modelrun_gate_baseline_metric', name).map((s) => s.labels.side));
      if (state === 'none') {
        // Nothing to compare with: no numbers (absent, not 0), the candidate's own metrics only.
        expect(values).toEqual([]);
        expect([...sides]).toEqual(['candidate']);
      } else {
        // The simulated notebook retrains the seeded model exactly: full agreement, no change, no regression.
        expect(values.map((s) => s.labels.measure).sort()).toEqual(measures);
        for (const v of values) expect(v.value).toBe(v.labels.measure === 'agreement' ? 1 : 0);
        expect([...sides].sort()).toEqual(['candidate', 'served']);
      }
      if (!label) expect(series('mlops_modelrun_gate_baseline_metric', name).filter((s) => s.labels.metric === 'r2' && s.labels.side === 'candidate').map((s) => s.labels.output)).toEqual(['0', '1', '2', '3', '4']);
    }
  });

  test('a RolledBack run carries its rollback step and the release it restored', () => {
    for (const r of runs.filter((x) => x.status?.phase === 'RolledBack')) {
      const name = r.metadata.name ?? '';
      expect(series('mlops_modelrun_step_finished_timestamp_seconds', name).map((s) => s.labels.step)).toContain('rollback');
      expect(series('mlops_modelrun_finished_timestamp_seconds', name)).toHaveLength(1);
      expect(series('mlops_modelrun_info', name)[0]?.labels.restored).toBe(r.status?.release?.restored ?? undefined);
    }
  });

  test('the shipped rules compute freshness, counts and step durations from these series, and alert on the rollbacks', async () => {
    const selector = (s: Sample): string => `${s.name}{${Object.entries(s.labels).sort().map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`;
    const served = (model: string): ModelRun | undefined => runs
      .filter((r) => r.spec.model === model && r.status?.phase === 'Succeeded')
      .sort((a, b) => seconds(b.status?.steps?.training?.finished) - seconds(a.status?.steps?.training?.finished))[0];
    const phaseLabels = (r: ModelRun): Record<string, string> => series('mlops_modelrun_phase', r.metadata.name).find((s) => s.value === 1)?.labels ?? {};
    const durations = samples.filter((s) => s.name === 'mlops_modelrun_step_finished_timestamp_seconds').map((f) => {
      const start = samples.find((s) => s.name === 'mlops_modelrun_step_started_timestamp_seconds' && s.labels.modelrun === f.labels.modelrun && s.labels.step === f.labels.step);
      return { labels: `mlops:modelrun_step_duration_seconds${selector({ ...f, name: '' })}`, value: f.value - (start?.value ?? Number.NaN) };
    });
    const counts = new Map<string, number>();
    for (const r of runs) {
      const key = `mlops:modelruns:count{namespace="${DEV_NAMESPACE}", model="${r.spec.model}", phase="${r.status?.phase ?? ''}"}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    // promtool's clock starts at 0, so every finished run counts as recent.
    const tests = {
      rule_files: ['prometheusrule.groups.yaml'],
      evaluation_interval: '1m',
      tests: [{
        interval: '1m',
        input_series: samples.map((s) => ({ series: selector(s), values: `${s.value}x10` })),
        promql_expr_test: [
          {
            expr: 'mlops:model_trained_timestamp_seconds:max',
            eval_time: '5m',
            exp_samples: MODELS.map((m) => ({ labels: `mlops:model_trained_timestamp_seconds:max{namespace="${DEV_NAMESPACE}", model="${m}"}`, value: seconds(served(m)?.status?.steps?.training?.finished) })),
          },
          { expr: 'mlops:modelruns:count', eval_time: '5m', exp_samples: [...counts].map(([labels, value]) => ({ labels, value })) },
          { expr: 'mlops:modelrun_step_duration_seconds', eval_time: '5m', exp_samples: durations },
        ],
        alert_rule_test: [{
          eval_time: '5m',
          alertname: 'ModelRunRolledBack',
          exp_alerts: runs.filter((r) => r.status?.phase === 'RolledBack').map((r) => ({
            exp_labels: { ...phaseLabels(r), severity: 'warning' },
            exp_annotations: {
              summary: `Run ${r.metadata.name ?? ''} of ${r.spec.model} was rolled back`,
              description: 'The new release failed verification on the new predictor pods and the previous release was restored.',
            },
          })),
        }],
      }],
    };
    expect(durations.length).toBeGreaterThan(10);
    const dir = mkdtempSync(join(tmpdir(), 'mlops-real-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'prometheusrule.groups.yaml'), stringify({ groups }, { lineWidth: 0 }));
    writeFileSync(join(dir, 'real.test.yaml'), stringify(tests, { lineWidth: 0 }));
    const promtoolTest = async (): Promise<{ code: number; out: string }> => {
      try {
        const r = await run('promtool', ['test', 'rules', 'real.test.yaml'], { cwd: dir, maxBuffer: 16 * 1024 * 1024 });
        return { code: 0, out: r.stdout + r.stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
      }
    };
    const passed = await promtoolTest();
    expect(passed.out).toContain('SUCCESS');
    expect(passed.code).toBe(0);
    // The same file with one served trained-at off by a second fails: the comparison is real.
    const first = tests.tests[0]?.promql_expr_test[0]?.exp_samples[0];
    if (first) first.value += 1;
    writeFileSync(join(dir, 'real.test.yaml'), stringify(tests, { lineWidth: 0 }));
    const failed = await promtoolTest();
    expect(failed.out).toContain('FAILED');
  }, 120_000);
});
