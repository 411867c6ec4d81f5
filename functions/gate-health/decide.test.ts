import { ModelApproved, ModelRejected } from '../../events/index.ts';
import { findModel, loadCatalog, type CatalogModel } from '../../runtime/catalog.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { decideGate, type GateAction, type GateInput } from './decide.ts';
import { EXPECTED_CHECKS, evaluateGate, type GateEvidence } from './report.ts';

const catalog = loadCatalog('config/models.yaml');
/** The core checks' tests use the catalog models without the comparison with the served release (tested below). */
const withoutBaseline = (m: CatalogModel): CatalogModel => ({ ...m, gate: { ...m.gate, baseline: undefined }, referenceData: undefined });
const shippedAnomaly = findModel(catalog, 'anomaly-detector') as CatalogModel;
const anomaly = withoutBaseline(shippedAnomaly);
const predictive = withoutBaseline(findModel(catalog, 'predictive-analytics') as CatalogModel);
const NOW = new Date('2026-11-22T10:00:00.000Z');
const RUN = 'anomaly-detector-0123456789';
const SHA = 'a'.repeat(64);
const JOB = `${RUN}-gate`;

function modelRun(status: ModelRunStatus, over: { model?: string; profile?: 'cpu' | 'gpu'; name?: string } = {}): ModelRun {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
    metadata: { name: over.name ?? RUN, namespace: 'mlops', uid: 'uid-1' },
    spec: { model: over.model ?? 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'k', profile: over.profile ?? 'cpu' },
    status,
  };
}

const gating = (extra: ModelRunStatus = {}): ModelRun => modelRun({
  phase: 'Gating', step: 'gate', artifact: { path: `.runs/${RUN}/anomaly-detector/model.pkl` },
  steps: { training: { started: '2026-11-22T09:00:00.000Z', finished: '2026-11-22T09:50:00.000Z', outcome: 'Succeeded' }, gate: { started: '2026-11-22T09:55:00.000Z', job: JOB } },
  ...extra,
});

const row = (i: number, width = 45): number[] => Array.from({ length: width }, (_, j) => Math.round(((i * 7 + j) % 13) * 0.1 * 1e6) / 1e6 - 0.6);
const allChecks = (): Array<{ name: string; ok: boolean; message: string; observed: unknown }> => EXPECTED_CHECKS.map((name) => ({ name, ok: true, message: `${name} ok`, observed: name === 'sha256' ? SHA : true }));

/** What gate.py reports for a good anomaly-detector model (3 probe rows after shrinking to 4 KiB). */
function goodReport(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ok: true, checks: allChecks(), bytes: 150_000, sha256: SHA, loadSeconds: 0.05,
    probe: { rows: [row(0), row(1), row(2)], expected: [1, -1, 1] }, python: '3.11.2', sklearn: '1.2.1', truncated: true, ...over,
  };
}

const finished = (result: unknown, over: Partial<GateEvidence> = {}): GateInput => ({
  kind: 'job-finished', run: RUN, evidence: { job: JOB, succeeded: true, ...(result === undefined ? {} : { result }), ...over },
});

const decide = (input: GateInput, run: ModelRun | undefined, over: { mode?: 'cluster' | 'dev'; model?: CatalogModel; served?: { run: string; loadSeconds?: number; bytes?: number } } = {}): GateAction[] =>
  decideGate(input, { ...(run ? { run } : {}), model: over.model ?? anomaly, mode: over.mode ?? 'cluster', now: NOW, ...(over.served ? { served: over.served } : {}) });

const withoutProbe = (r: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'probe'));
const statusChecks = (checks: Array<{ name: string; ok: boolean; message?: string }>) => checks.map((c) => ({ name: c.name, ok: c.ok, ...(c.message !== undefined ? { message: c.message } : {}) }));

describe('gate-health decide: the trigger', () => {
  const trigger = (event: 'training.succeeded' | 'model.copied', profile: 'cpu' | 'gpu' = 'cpu'): GateInput => ({ kind: 'trigger', event, run: RUN, profile });
  const fresh = modelRun({ phase: 'Gating', step: 'gate', steps: { training: { finished: '2026-11-22T09:50:00.000Z', outcome: 'Succeeded' } } });

  test.each<[string, GateInput, ModelRun | undefined, GateAction[]]>([
    ['CPU training.succeeded on a Gating run → the gate Job and its start record (deadline now + gateMinutes)', trigger('training.succeeded'), fresh, [
      { kind: 'create-job', run: RUN, job: JOB },
      { kind: 'record-started', run: RUN, job: JOB, deadline: '2026-11-22T10:15:00.000Z' },
    ]],
    ['model.copied on a Gating run → the gate Job', trigger('model.copied', 'gpu'), fresh, [
      { kind: 'create-job', run: RUN, job: JOB },
      { kind: 'record-started', run: RUN, job: JOB, deadline: '2026-11-22T10:15:00.000Z' },
    ]],
    ['redelivery while the gate runs → same Job (create is idempotent), start kept by the effect', trigger('training.succeeded'), gating(), [
      { kind: 'create-job', run: RUN, job: JOB },
      { kind: 'record-started', run: RUN, job: JOB, deadline: '2026-11-22T10:15:00.000Z' },
    ]],
    ['GPU training.succeeded → not ours (copy first)', trigger('training.succeeded', 'gpu'), fresh, [{ kind: 'ignore', reason: 'GPU runs are gated after model.copied' }]],
    ['no ModelRun', trigger('training.succeeded'), undefined, [{ kind: 'ignore', reason: `no ModelRun ${RUN} (deleted or not ours)` }]],
    ['run still Copying', trigger('model.copied', 'gpu'), modelRun({ phase: 'Copying' }), [{ kind: 'ignore', reason: 'run is Copying, not Gating' }]],
    ['run already Failed (watchdog)', trigger('training.succeeded'), modelRun({ phase: 'Failed' }), [{ kind: 'ignore', reason: 'run is Failed, not Gating' }]],
    ['gate already decided', trigger('training.succeeded'), modelRun({ phase: 'Promoting', steps: { gate: { finished: '2026-11-22T09:58:00.000Z', outcome: 'approved' } } }), [{ kind: 'ignore', reason: 'gate already approved' }]],
  ])('%s', (_name, input, run, expected) => {
    expect(decide(input, run)).toEqual(expected);
  });
});

describe('gate-health decide: the finished gate Job', () => {
  test('a complete, consistent report → approved: exact status record and model.approved', () => {
    const report = goodReport();
    const actions = decide(finished(report), gating());
    const reportWithoutProbe = withoutProbe(report);
    const checks = allChecks();
    expect(actions).toEqual([
      {
        kind: 'record-approved', run: RUN,
        gate: { verdict: 'approved', checks: statusChecks(checks), report: reportWithoutProbe },
        probe: { rows: [row(0), row(1), row(2)], expected: [1, -1, 1] },
        artifact: { path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 150_000, sha256: SHA },
        warnings: [],
        message: 'all 8 checks passed; 3 probe rows recorded',
      },
      {
        kind: 'reply-approved',
        data: { model: 'anomaly-detector', run: RUN, path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 150_000, sha256: SHA, checks, probe: { rows: [row(0), row(1), row(2)], expected: [1, -1, 1] } },
      },
    ]);
    expect(ModelApproved.safeParse((actions[1] as { data: unknown }).data).success).toBe(true);
  });

  test('a regression model with every output row of the declared width → approved', () => {
    const run = modelRun({ phase: 'Gating', artifact: { path: `.runs/${RUN}/predictive-analytics/model.pkl`, bytes: 150_000, sha256: SHA } }, { model: 'predictive-analytics', profile: 'gpu' });
    const probe = { rows: [row(0, 5), row(1, 5)], expected: [[0.1, 0.2, 0.3, 0.4, 0.5], [-1, 0, 1, 2, 3]] };
    const actions = decide(finished(goodReport({ probe, truncated: undefined })), run, { model: predictive });
    expect(actions.map((a) => a.kind)).toEqual(['record-approved', 'reply-approved']);
    expect((actions[1] as { data: { probe: unknown } }).data.probe).toEqual(probe);
  });

  test('served release comparison adds warnings, never a rejection', () => {
    const actions = decide(finished(goodReport({ loadSeconds: 2, bytes: 5_000 })), gating(), { served: { run: 'anomaly-detector-old', loadSeconds: 0.1, bytes: 200_000 } });
    expect(actions[0]).toMatchObject({ kind: 'record-approved', warnings: [
      'gate: model loads in 2s, at least 10x slower than the served release anomaly-detector-old (0.1s)',
      'gate: model is 5000 bytes, more than 90% smaller than the served release anomaly-detector-old (200000 bytes)',
    ] });
    expect(decide(finished(goodReport({ loadSeconds: 0.3 })), gating(), { served: { run: 'old', loadSeconds: 0.01 } })[0]).toMatchObject({ warnings: [] }); // under the noise floor
  });

  test('a simulated report is approved (and marked) only under mlops dev', () => {
    const dev = decide(finished(goodReport({ simulated: true })), gating(), { mode: 'dev' });
    expect(dev[0]).toMatchObject({ kind: 'record-approved', gate: { verdict: 'approved', simulated: true }, message: 'all 8 checks passed (simulated); 3 probe rows recorded' });
    expect(dev[1]).toMatchObject({ kind: 'reply-approved', data: { simulated: true } });
    const cluster = decide(finished(goodReport({ simulated: true })), gating(), { mode: 'cluster' });
    expect(cluster[1]).toMatchObject({ kind: 'reply-rejected', data: { failed: ['simulated'] } });
  });

  const without = (name: string) => allChecks().filter((c) => c.name !== name);
  const failing = (name: string, message: string) => allChecks().map((c) => (c.name === name ? { ...c, ok: false, message } : c));
  const from = (name: string, message: string) => {
    const i = EXPECTED_CHECKS.indexOf(name as (typeof EXPECTED_CHECKS)[number]);
    return allChecks().map((c, j) => (j === i ? { ...c, ok: false, message } : j > i ? { ...c, ok: false, message: `skipped: ${EXPECTED_CHECKS[j - 1]} failed` } : c));
  };
  const ALL = [...EXPECTED_CHECKS];

  const rejections: Array<[string, GateInput, string[], RegExp?]> = [
    ['no termination message', finished(undefined, { problem: `job ${JOB} left no termination message` }), ['report', ...ALL], /left no termination message/],
    ['termination message is not JSON', finished(undefined, { problem: `job ${JOB} termination message is not JSON` }), ['report', ...ALL], /not JSON/],
    ['Job failed on its deadline without a report', finished(undefined, { succeeded: false, failure: 'DeadlineExceeded: Job was active longer than specified deadline', problem: 'no message' }), ['job', 'report', ...ALL], /DeadlineExceeded/],
    ['Job failed although the report is good', finished(goodReport(), { succeeded: false, failure: 'BackoffLimitExceeded' }), ['job'], /BackoffLimitExceeded/],
    ['report is a JSON array', finished([1, 2]), ['report', ...ALL]],
    ['report is a JSON string', finished('ok'), ['report', ...ALL]],
    ['report is null', finished(null), ['report', ...ALL]],
    ['usage error report', finished({ ok: false, error: 'usage: FEATURES is required', checks: [], python: '3.11.2', sklearn: null }), ['report', ...ALL], /usage: FEATURES is required/],
    ['a check missing from the list', finished(goodReport({ checks: without('output-values') })), ['output-values'], /missing from the report/],
    ['two checks missing', finished(goodReport({ checks: without('load').filter((c) => c.name !== 'predict') })), ['load', 'predict']],
    ['no checks at all', finished(goodReport({ checks: [] })), ALL],
    ['checks not an array', finished(goodReport({ checks: { exists: true } })), ['report', ...ALL]],
    ['load failed and everything after it skipped', finished(goodReport({ ok: false, checks: from('load', 'UnpicklingError: invalid load key'), probe: { rows: [], expected: [] } })), ['load', 'has-predict', 'predict', 'output-shape', 'output-values', 'probe'], /UnpicklingError/],
    ['a failed check although the report says ok', finished(goodReport({ checks: failing('output-values', '2 of 8 values not in [1,-1]') })), ['output-values'], /not in \[1,-1\]/],
    ['ok: false with every check ok', finished(goodReport({ ok: false })), ['report'], /ok: false/],
    ['a check reported twice', finished(goodReport({ checks: [...allChecks(), { name: 'exists', ok: true, message: 'again', observed: true }] })), ['exists'], /more than once/],
    ['a check with ok as a string', finished(goodReport({ checks: allChecks().map((c) => (c.name === 'exists' ? { ...c, ok: 'true' } : c)) })), ['exists', 'report']],
    ['a check without ok', finished(goodReport({ checks: allChecks().map((c) => (c.name === 'predict' ? { name: c.name, message: c.message } : c)) })), ['predict', 'report']],
    ['an unknown key in the report', finished(goodReport({ verdict: 'pass' })), ['report'], /gate schema/],
    ['an unknown key in a check', finished(goodReport({ checks: allChecks().map((c) => ({ ...c, extra: 1 })) })), ['report']],
    ['an error alongside ok: true', finished(goodReport({ error: 'predict raised in a thread' })), ['report'], /predict raised/],
    ['sha256 not hex', finished(goodReport({ sha256: 'z'.repeat(64) })), ['sha256'], /64 lower-case hex/],
    ['sha256 upper case', finished(goodReport({ sha256: 'A'.repeat(64) })), ['sha256']],
    ['sha256 too short', finished(goodReport({ sha256: 'abc' })), ['sha256']],
    ['sha256 null', finished(goodReport({ sha256: null })), ['sha256']],
    ['sha256 missing', finished((({ sha256: _s, ...r }) => r)(goodReport())), ['report']],
    ['sha256 check disagrees with the report', finished(goodReport({ checks: allChecks().map((c) => (c.name === 'sha256' ? { ...c, observed: 'b'.repeat(64) } : c)) })), ['sha256'], /disagree/],
    ['bytes below the catalog minimum', finished(goodReport({ bytes: 999 })), ['min-bytes'], /999 bytes is below the catalog minimum 1000/],
    ['bytes null', finished(goodReport({ bytes: null })), ['min-bytes'], /no byte count/],
    ['bytes negative', finished(goodReport({ bytes: -1 })), ['report']],
    ['bytes a string', finished(goodReport({ bytes: '150000' })), ['report']],
    ['load time missing', finished(goodReport({ loadSeconds: null })), ['load'], /no load time/],
    ['load time over the limit', finished(goodReport({ loadSeconds: 61 })), ['load'], /over the 60s limit/],
    ['no probe rows', finished(goodReport({ probe: { rows: [], expected: [] } })), ['probe'], /no probe rows/],
    ['probe missing', finished((({ probe: _p, ...r }) => r)(goodReport())), ['report']],
    ['probe rows of the wrong width', finished(goodReport({ probe: { rows: [row(0, 44)], expected: [1] } })), ['probe'], /44 values, expected 45/],
    ['probe rows ragged', finished(goodReport({ probe: { rows: [row(0), row(1, 46)], expected: [1, 1] } })), ['probe']],
    ['probe values not numbers', finished(goodReport({ probe: { rows: [row(0).map(String)], expected: [1] } })), ['report']],
    ['fewer expected outputs than rows', finished(goodReport({ probe: { rows: [row(0), row(1)], expected: [1] } })), ['probe'], /1 expected outputs for 2 probe rows/],
    ['an expected label outside the catalog labels', finished(goodReport({ probe: { rows: [row(0)], expected: [0] } })), ['probe'], /not one of \[1,-1\]/],
    ['an expected label of the wrong type', finished(goodReport({ probe: { rows: [row(0)], expected: ['1'] } })), ['probe']],
    ['more probe rows than asked for', finished(goodReport({ probe: { rows: Array.from({ length: 9 }, (_, i) => row(i)), expected: Array.from({ length: 9 }, () => 1) } })), ['probe'], /more than the 8 asked for/],
    ['an unknown extra check that failed', finished(goodReport({ checks: [...allChecks(), { name: 'custom', ok: false, message: 'no', observed: null }] })), ['custom']],
  ];
  test.each(rejections.map(([name, input, failed, message]) => ({ name, input, failed, message: message ?? null })))('$name → rejected naming $failed', ({ input, failed, message }) => {
    const actions = decide(input, gating());
    expect(actions.map((a) => a.kind)).toEqual(['record-rejected', 'reply-rejected']);
    const replyData = (actions[1] as Extract<GateAction, { kind: 'reply-rejected' }>).data;
    expect(replyData.failed).toEqual(failed);
    expect(ModelRejected.safeParse(replyData).success).toBe(true);
    const record = actions[0] as Extract<GateAction, { kind: 'record-rejected' }>;
    expect(record.gate.verdict).toBe('rejected');
    expect(record.gate.checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(failed);
    expect(record.message).toBe(replyData.message);
    expect(record.message.startsWith(`gate rejected the model; failed checks: ${failed.join(', ')} (`)).toBe(true);
    if (message) expect(record.message).toMatch(message);
  });

  test('an exact rejection: a corrupt pickle', () => {
    const checks = from('load', 'UnpicklingError: pickle data was truncated');
    const report = goodReport({ ok: false, checks, loadSeconds: 0.001, probe: { rows: [], expected: [] }, truncated: undefined });
    delete report.truncated;
    const actions = decide(finished(report), gating());
    const expectedChecks = [...checks, { name: 'probe', ok: false, message: 'no probe rows: nothing the endpoint check could compare against' }];
    const failed = ['load', 'has-predict', 'predict', 'output-shape', 'output-values', 'probe'];
    const message = 'gate rejected the model; failed checks: load, has-predict, predict, output-shape, output-values, probe (load: UnpicklingError: pickle data was truncated; has-predict: skipped: load failed; predict: skipped: has-predict failed; output-shape: skipped: predict failed; output-values: skipped: output-shape failed; probe: no probe rows: nothing the endpoint check could compare against)';
    const reportWithoutProbe = withoutProbe(report);
    expect(actions).toEqual([
      { kind: 'record-rejected', run: RUN, gate: { verdict: 'rejected', checks: statusChecks(expectedChecks), report: reportWithoutProbe }, message },
      { kind: 'reply-rejected', data: { model: 'anomaly-detector', run: RUN, checks: expectedChecks, failed, message } },
    ]);
  });

  test('a GPU run: the gated bytes must be the copied bytes', () => {
    const run = gating({ artifact: { path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 150_000, sha256: 'c'.repeat(64) } });
    const actions = decide(finished(goodReport()), run);
    expect(actions[1]).toMatchObject({ kind: 'reply-rejected', data: { failed: ['artifact'] } });
    const sameBytes = gating({ artifact: { path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 150_000, sha256: SHA } });
    expect(decide(finished(goodReport()), sameBytes).map((a) => a.kind)).toEqual(['record-approved', 'reply-approved']);
    const otherSize = gating({ artifact: { path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 149_999, sha256: SHA } });
    expect(decide(finished(goodReport()), otherSize)[1]).toMatchObject({ data: { failed: ['artifact'] } });
  });

  test('evaluateGate never approves with a failed check, whatever the report claims', () => {
    for (const name of EXPECTED_CHECKS) {
      const v = evaluateGate({ job: JOB, succeeded: true, result: goodReport({ checks: failing(name, 'x') }) }, { model: anomaly, mode: 'dev' });
      expect(v.verdict).toBe('rejected');
    }
  });
});

describe('gate-health decide: after the verdict', () => {
  const approvedStatus = (extra: ModelRunStatus['steps'] = {}): ModelRunStatus => ({
    phase: 'Promoting',
    steps: { gate: { started: '2026-11-22T09:55:00.000Z', finished: '2026-11-22T09:56:00.000Z', outcome: 'approved', message: 'ok', job: JOB }, ...extra },
    gate: { verdict: 'approved', checks: [{ name: 'exists', ok: true, message: 'found' }] },
    probe: { rows: [row(0)], expected: [1] },
    artifact: { path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 150_000, sha256: SHA },
  });

  test.each<[string, ModelRun, GateAction[]]>([
    ['approved, promotion not started → the same model.approved again', modelRun(approvedStatus()), [{ kind: 'reply-approved', data: {
      model: 'anomaly-detector', run: RUN, path: `.runs/${RUN}/anomaly-detector/model.pkl`, bytes: 150_000, sha256: SHA,
      checks: [{ name: 'exists', ok: true, message: 'found' }], probe: { rows: [row(0)], expected: [1] },
    } }]],
    ['approved, promotion started → silent', modelRun(approvedStatus({ promote: { started: '2026-11-22T09:57:00.000Z' } })), [{ kind: 'ignore', reason: 'gate approved; promotion already started' }]],
    ['rejected → the same model.rejected again', modelRun({
      phase: 'Rejected', steps: { gate: { finished: '2026-11-22T09:56:00.000Z', outcome: 'rejected', message: 'gate rejected the model; failed checks: load (load: bad)' } },
      gate: { verdict: 'rejected', checks: [{ name: 'exists', ok: true }, { name: 'load', ok: false, message: 'bad' }] },
    }), [{ kind: 'reply-rejected', data: { model: 'anomaly-detector', run: RUN, checks: [{ name: 'exists', ok: true }, { name: 'load', ok: false, message: 'bad' }], failed: ['load'], message: 'gate rejected the model; failed checks: load (load: bad)' } }]],
    ['run Failed by the watchdog before the Job ended → silent', modelRun({ phase: 'Failed', steps: { gate: { started: '2026-11-22T09:55:00.000Z' } } }), [{ kind: 'ignore', reason: 'run is Failed; a late gate Job changes nothing' }]],
  ])('%s', (_name, run, expected) => {
    expect(decide(finished(goodReport()), run)).toEqual(expected);
  });
});

describe('gate-health decide: the comparison with the served release and the serving runtime', () => {
  // The anomaly-detector with the baseline and serving runtime configured (as docs/gate.md describes).
  const baselined: CatalogModel = {
    ...anomaly,
    gate: { ...anomaly.gate, baseline: { minAgreement: 0.9, maxRateChange: 0.1, maxMetricRegression: 0.1 } },
    referenceData: { path: 'reference/anomaly-detector.npz' },
    serving: { sklearnVersion: '1.2' },
  };
  const BASELINE_CHECKS = ['serving-runtime', 'reference-data', 'baseline-agreement', 'baseline-rate', 'baseline-metrics'];
  const extraChecks = (over: Record<string, { ok: boolean; message: string }> = {}) => BASELINE_CHECKS.map((name) => ({ name, ok: true, message: `${name} ok`, observed: null, ...over[name] }));
  const comparison = {
    served: { state: 'release', release: 'anomaly-detector-r0' }, reference: { rows: 400, targets: true }, trigger: 'schedule', advisory: [],
    thresholds: { minAgreement: 0.9, maxRateChange: 0.1, maxRelativeChange: null, maxMetricRegression: 0.1 },
    candidate: { precision: 0.0897, recall: 1, anomalyRate: 0.5575 }, servedMetrics: { precision: 0.3864, recall: 0.85, anomalyRate: 0.11 },
    comparison: { agreement: 0.5525, candidateRate: 0.5575, servedRate: 0.11, rateChange: 0.4475 }, metricChanges: { precision: 0.2967, recall: -0.15 },
  };
  const runtime = { pickled: ['1.2.1'], serving: '1.2', gate: '1.2.1' };
  const decideBaselined = (report: Record<string, unknown>) => decide(finished(report), gating(), { model: baselined });

  test('every configured check passes → approved, the comparison recorded on the ModelRun report', () => {
    const report = goodReport({ checks: [...allChecks(), ...extraChecks()], baseline: { ...comparison, comparison: { agreement: 1, candidateRate: 0.11, servedRate: 0.11, rateChange: 0 } }, runtime });
    const actions = decideBaselined(report);
    expect(actions.map((a) => a.kind)).toEqual(['record-approved', 'reply-approved']);
    const record = actions[0] as Extract<GateAction, { kind: 'record-approved' }>;
    expect(record.gate.report).toEqual(withoutProbe(report));
    expect(record.message).toBe('all 13 checks passed; 3 probe rows recorded');
  });

  test('an exact rejection on agreement, rate and metrics: the message names what was compared, the numbers and the thresholds', () => {
    const messages = {
      'baseline-agreement': { ok: false, message: 'labels agree on 0.5525 of rows, minAgreement NOT met: 0.9' },
      'baseline-rate': { ok: false, message: 'anomaly rate 0.11 -> 0.5575, maxRateChange NOT met: 0.1' },
      'baseline-metrics': { ok: false, message: 'worst regression precision 0.2967, maxMetricRegression NOT met: 0.1' },
    };
    const checks = [...allChecks(), ...extraChecks(messages)];
    const report = goodReport({ ok: false, checks, baseline: comparison, runtime });
    const failed = ['baseline-agreement', 'baseline-rate', 'baseline-metrics'];
    const message = 'gate rejected the model; failed checks: baseline-agreement, baseline-rate, baseline-metrics ('
      + 'baseline-agreement: labels agree on 0.5525 of rows, minAgreement NOT met: 0.9; baseline-rate: anomaly rate 0.11 -> 0.5575, maxRateChange NOT met: 0.1; '
      + 'baseline-metrics: worst regression precision 0.2967, maxMetricRegression NOT met: 0.1); '
      + 'baseline vs served release anomaly-detector-r0 on 400 reference rows with targets: agreement 0.5525 (min 0.9), anomaly rate 0.11 → 0.5575 (max change 0.1), worst metric regression 0.2967 (max 0.1)';
    const gateChecks = checks.map((c) => ({ name: c.name, ok: c.ok, message: c.message, observed: c.observed }));
    expect(decideBaselined(report)).toEqual([
      {
        kind: 'record-rejected', run: RUN, message,
        gate: {
          verdict: 'rejected', checks: statusChecks(gateChecks), report: withoutProbe(report),
          // What kube-state-metrics reads (status.gate.baseline): each check's number and threshold, both models' metrics.
          baseline: {
            served: 'release', release: 'anomaly-detector-r0', referenceRows: 400, trigger: 'schedule',
            checks: [
              { check: 'baseline-agreement', measure: 'agreement', value: 0.5525, threshold: 0.9, ok: false },
              { check: 'baseline-rate', measure: 'rateChange', value: 0.4475, threshold: 0.1, ok: false },
              { check: 'baseline-metrics', measure: 'metricRegression', value: 0.2967, worst: 'precision', threshold: 0.1, ok: false },
            ],
            metrics: [
              { model: 'candidate', metric: 'precision', value: 0.0897 }, { model: 'candidate', metric: 'recall', value: 1 }, { model: 'candidate', metric: 'anomalyRate', value: 0.5575 },
              { model: 'served', metric: 'precision', value: 0.3864 }, { model: 'served', metric: 'recall', value: 0.85 }, { model: 'served', metric: 'anomalyRate', value: 0.11 },
            ],
          },
        },
      },
      { kind: 'reply-rejected', data: { model: 'anomaly-detector', run: RUN, checks: gateChecks, failed, message } },
    ]);
  });

  test.each<[string, Record<string, unknown>, string[]]>([
    ['a report without the baseline checks (an older gate script)', goodReport(), BASELINE_CHECKS],
    ['a report without serving-runtime', goodReport({ checks: [...allChecks(), ...extraChecks().filter((c) => c.name !== 'serving-runtime')], baseline: comparison }), ['serving-runtime']],
    ['a pickle from an incompatible scikit-learn', goodReport({ ok: false, checks: [...allChecks(), ...extraChecks({ 'serving-runtime': { ok: false, message: 'pickled with scikit-learn 0.24.2; the serving runtime has 1.2' } })], runtime: { pickled: ['0.24.2'], serving: '1.2', gate: '1.2.1' } }), ['serving-runtime']],
    ['a baseline report of the wrong shape', goodReport({ checks: [...allChecks(), ...extraChecks()], baseline: { served: 'r0' } }), ['report']],
  ])('%s → rejected naming %j', (_name, report, failed) => {
    const actions = decideBaselined(report);
    expect(actions.map((a) => a.kind)).toEqual(['record-rejected', 'reply-rejected']);
    expect((actions[1] as Extract<GateAction, { kind: 'reply-rejected' }>).data.failed).toEqual(failed);
  });

  test('nothing served: the skipped comparison is reported and approves', () => {
    const skipped = extraChecks({ 'baseline-agreement': { ok: true, message: 'skipped: nothing served' }, 'baseline-rate': { ok: true, message: 'skipped: nothing served' }, 'baseline-metrics': { ok: true, message: 'skipped: nothing served' } });
    const report = goodReport({ checks: [...allChecks(), ...skipped], baseline: { ...comparison, served: { state: 'none', release: null }, servedMetrics: undefined, comparison: undefined, metricChanges: undefined } });
    const clean = JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
    expect(decideBaselined(clean).map((a) => a.kind)).toEqual(['record-approved', 'reply-approved']);
  });
});

describe('gate Job env for the baseline', () => {
  test('the catalog baseline, reference data, trigger and serving runtime reach the Job', async () => {
    const { gateEnv } = await import('./manifests.ts');
    const model: CatalogModel = { ...predictive, gate: { ...predictive.gate, baseline: { maxRelativeChange: 0.5, triggers: { drift: { advisory: [] } } } }, referenceData: { path: 'reference/predictive-analytics.csv' }, serving: { sklearnVersion: '1.5' } };
    expect(gateEnv('r1', model, '.runs/r1/predictive-analytics/model.pkl', 'drift')).toEqual({
      MODEL_DIR: '/mnt/shared/.runs/r1/predictive-analytics', FEATURES: '5', OUTPUT_KIND: 'regression', OUTPUT_WIDTH: '5',
      MIN_BYTES: String(predictive.gate.minBytes), PROBE_ROWS: String(predictive.gate.probeRows), SEED: '42', MAX_LOAD_SECONDS: String(predictive.gate.maxLoadSeconds),
      SERVING_SKLEARN: '1.5', BASELINE: '{"maxRelativeChange":0.5,"triggers":{"drift":{"advisory":[]}}}',
      REFERENCE_DATA: '/mnt/shared/reference/predictive-analytics.csv', ROOT: '/mnt/shared', MODEL: 'predictive-analytics', TRIGGER: 'drift',
    });
    const plain = { ...predictive, gate: { ...predictive.gate, baseline: undefined }, referenceData: undefined, serving: undefined };
    expect(Object.keys(gateEnv('r1', plain))).not.toContain('BASELINE');
  });

  test('the shipped catalog compares both models with the served release by default (docs/gate.md, "Defaults")', async () => {
    const { gateEnv } = await import('./manifests.ts');
    const { expectedChecks } = await import('./report.ts');
    expect(expectedChecks(shippedAnomaly).slice(EXPECTED_CHECKS.length)).toEqual(['reference-data', 'baseline-agreement', 'baseline-rate', 'baseline-metrics']);
    const env = gateEnv('r1', shippedAnomaly, '.runs/r1/anomaly-detector/model.pkl', 'schedule');
    expect([env['BASELINE'], env['REFERENCE_DATA']]).toEqual(['{"minAgreement":0.9,"maxRateChange":0.1,"maxMetricRegression":0.1}', '/mnt/shared/reference/anomaly-detector.npz']);
    const shippedPredictive = findModel(catalog, 'predictive-analytics') as CatalogModel;
    expect(expectedChecks(shippedPredictive).slice(EXPECTED_CHECKS.length)).toEqual(['reference-data', 'baseline-change', 'baseline-metrics']);
    expect(gateEnv('r1', shippedPredictive)['BASELINE']).toBe('{"maxRelativeChange":0.5,"maxMetricRegression":0.5}');
  });
});
