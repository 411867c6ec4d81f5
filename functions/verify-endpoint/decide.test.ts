import { loadCatalog, type CatalogModel } from '../../runtime/catalog.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import type { RestoredProbe } from '../../runtime/rollback.ts';
import { decideRestore, decideVerify, extractPredictions, judge, judgeRestore, predictionMatches, unreachableButGone, type PodView, type ProbeOutcome, type VerifyAction, type VerifyTrigger } from './decide.ts';

const catalog = loadCatalog('config/models.yaml');
const anomaly = catalog.models.find((m) => m.name === 'anomaly-detector')!;
const predictive = catalog.models.find((m) => m.name === 'predictive-analytics')!;
const predictiveV2: CatalogModel = { ...predictive, protocol: 'v2' };
const RUN = 'anomaly-detector-00000000a1';
const OLD = 'anomaly-detector-00000000p0';
const rows = [[0.5, 1], [2, 3]];
const probe = { rows, expected: [1, -1] };

function run(status: ModelRunStatus): ModelRun {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', metadata: { name: RUN },
    spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'k', profile: 'cpu' }, status,
  };
}
const verifying = (extra: ModelRunStatus = {}): ModelRun => run({ phase: 'Verifying', probe, ...extra });
const pod = (name: string, release: string | undefined, serving: boolean, port = 8080): PodView => ({ name, ...(release ? { release } : {}), serving, ip: '10.0.0.7', port });

const probeAction = (pods: string[], port = 8080): VerifyAction => ({
  kind: 'probe', targets: pods.map((p) => ({ pod: p, url: `http://10.0.0.7:${port}/v1/models/anomaly-detector:predict` })), body: { instances: rows },
});

const decideCases: Array<{ name: string; trigger?: VerifyTrigger; run?: ModelRun; pods?: PodView[]; expected: VerifyAction[] }> = [
  { name: 'no run', expected: [{ kind: 'ignore', reason: 'no such ModelRun' }] },
  { name: 'run not Verifying', run: run({ phase: 'Promoting' }), expected: [{ kind: 'ignore', reason: 'run is Promoting, not Verifying' }] },
  { name: 'no pods yet', run: verifying(), pods: [], expected: [{ kind: 'wait', reason: `no Ready pod of release ${RUN} yet` }] },
  { name: 'only old pods Ready', run: verifying(), pods: [pod('old-1', OLD, true), pod('new-1', RUN, false)], expected: [{ kind: 'wait', reason: `no Ready pod of release ${RUN} yet` }] },
  // Rollouts (docs/verification.md): old pods neither block the verdict nor get probed.
  { name: 'old pods still Ready (surge, Serverless drain): probe only the new ones', run: verifying(), pods: [pod('new-1', RUN, true), pod('old-1', OLD, true), pod('old-2', OLD, true)], expected: [probeAction(['new-1'])] },
  { name: 'a pod without the annotation counts as old', run: verifying(), pods: [pod('new-1', RUN, true), pod('legacy', undefined, true)], expected: [probeAction(['new-1'])] },
  {
    name: 'old pods terminating (deletionTimestamp, listed through their grace period)', run: verifying(),
    pods: [pod('new-1', RUN, true), { ...pod('old-1', OLD, false), terminating: true }, { ...pod('old-2', OLD, true), terminating: true }],
    expected: [probeAction(['new-1'])],
  },
  { name: 'new pods NotReady (starting): wait', run: verifying(), pods: [pod('new-1', RUN, false), pod('new-2', RUN, false), pod('old-1', OLD, true)], expected: [{ kind: 'wait', reason: `no Ready pod of release ${RUN} yet` }] },
  { name: 'one new pod Ready, another still starting: wait for it', run: verifying(), pods: [pod('new-1', RUN, true), pod('new-2', RUN, false), pod('old-1', OLD, true)], expected: [{ kind: 'wait', reason: 'new pods not Ready yet: new-2' }] },
  { name: 'then every new pod Ready: probe them all', run: verifying(), pods: [pod('new-2', RUN, true), pod('new-1', RUN, true), pod('old-1', OLD, true)], expected: [probeAction(['new-1', 'new-2'])] },
  { name: 'a new pod restarting (Ready false again): wait', trigger: 'pod', run: verifying(), pods: [pod('new-1', RUN, true), pod('new-2', RUN, false)], expected: [{ kind: 'wait', reason: 'new pods not Ready yet: new-2' }] },
  { name: 'a new pod that is terminating (scaled down) is not waited for', run: verifying(), pods: [pod('new-1', RUN, true), { ...pod('new-2', RUN, false), terminating: true }], expected: [probeAction(['new-1'])] },
  { name: 'an event about an old pod after the new pods are Ready: probe the new ones', trigger: 'pod', run: verifying(), pods: [pod('new-1', RUN, true), { ...pod('old-1', OLD, false), terminating: true }], expected: [probeAction(['new-1'])] },
  { name: 'a delete event (the old pod is gone from the list): probe the new ones', trigger: 'pod', run: verifying(), pods: [pod('new-1', RUN, true)], expected: [probeAction(['new-1'])] },
  {
    name: 'an old pod event once the verdict is recorded is silent', trigger: 'pod',
    run: run({ phase: 'Succeeded', steps: { verify: { finished: '2026-11-22T10:05:00.000Z', outcome: 'verified', message: 'verified 2 predictions on 1 new pod(s): new-1' } } }),
    pods: [{ ...pod('old-1', OLD, false), terminating: true }], expected: [{ kind: 'ignore', reason: 'already verified' }],
  },
  { name: 'the container port is used', run: verifying(), pods: [pod('new-1', RUN, true, 9000)], expected: [probeAction(['new-1'], 9000)] },
  {
    name: 'no probe recorded fails closed', run: run({ phase: 'Verifying' }), pods: [pod('new-1', RUN, true)],
    expected: [
      { kind: 'record-failed', reason: 'mismatch', message: `run ${RUN} records no probe rows and expected outputs to verify with` },
      { kind: 'reply-failed', reason: 'mismatch', message: `run ${RUN} records no probe rows and expected outputs to verify with` },
    ],
  },
  {
    name: 'predictor.restarted redelivered after verified re-emits the verdict', run: run({ phase: 'Succeeded', steps: { verify: { finished: '2026-11-22T10:05:00.000Z', outcome: 'verified', message: 'verified 4 predictions on 2 new pod(s): a, b' } } }),
    expected: [{ kind: 'reply-verified', pods: ['a', 'b'], matched: 4, verifiedAt: '2026-11-22T10:05:00.000Z' }],
  },
  {
    name: 'a pod update after the verdict is silent', trigger: 'pod', run: run({ phase: 'Succeeded', steps: { verify: { finished: '2026-11-22T10:05:00.000Z', outcome: 'verified', message: 'verified 4 predictions on 2 new pod(s): a, b' } } }),
    expected: [{ kind: 'ignore', reason: 'already verified' }],
  },
  {
    name: 'verified but not yet ended (crash in between): end the run', trigger: 'pod', run: verifying({ steps: { verify: { finished: '2026-11-22T10:05:00.000Z', outcome: 'verified', message: 'verified 2 predictions on 1 new pod(s): a' } } }),
    expected: [{ kind: 'finish-verified', pods: 1 }, { kind: 'reply-verified', pods: ['a'], matched: 2, verifiedAt: '2026-11-22T10:05:00.000Z' }],
  },
  {
    name: 'failed verdict re-emitted while the rollback has not started', run: verifying({ steps: { verify: { finished: 't', outcome: 'http-error', message: 'pod a answered HTTP 500' } } }),
    expected: [{ kind: 'reply-failed', reason: 'http-error', message: 'pod a answered HTTP 500' }],
  },
  { name: 'failed verdict not re-emitted once the rollback started', run: verifying({ steps: { verify: { finished: 't', outcome: 'mismatch' }, rollback: { started: 't' } } }), expected: [{ kind: 'ignore', reason: 'rollback under way' }] },
];

describe('decideVerify', () => {
  test.each(decideCases)('$name', ({ trigger, run: r, pods, expected }) => {
    expect(decideVerify(trigger ?? 'restarted', r, pods ?? [], anomaly)).toEqual(expected);
  });

  test('V2 models get the V2 infer URL and body', () => {
    const r: ModelRun = { ...verifying(), status: { phase: 'Verifying', probe: { rows: [[1, 2, 3, 4, 5]], expected: [[1, 2, 3, 4, 5]] } } };
    expect(decideVerify('restarted', r, [pod('new-1', RUN, true)], predictiveV2)).toEqual([{
      kind: 'probe', targets: [{ pod: 'new-1', url: 'http://10.0.0.7:8080/v2/models/predictive-analytics/infer' }],
      body: { inputs: [{ name: 'input-0', shape: [1, 5], datatype: 'FP64', data: [1, 2, 3, 4, 5] }] },
    }]);
  });
});

const answer = (pod: string, body: unknown, status = 200): ProbeOutcome => ({ pod, kind: 'answer', status, body });

const judgeCases: Array<{ name: string; model?: CatalogModel; probe?: { rows: number[][]; expected: unknown[] }; outcomes: ProbeOutcome[]; expected: VerifyAction[] }> = [
  {
    name: 'every pod answers every row as the gate did',
    outcomes: [answer('a', { predictions: [1, -1] }), answer('b', { predictions: [[1], [-1]] })],
    expected: [
      { kind: 'record-verified', pods: ['a', 'b'], matched: 4, message: 'verified 4 predictions on 2 new pod(s): a, b' },
      { kind: 'reply-verified', pods: ['a', 'b'], matched: 4 },
    ],
  },
  {
    name: 'a wrong label is a mismatch',
    outcomes: [answer('a', { predictions: [1, 1] })],
    expected: [
      { kind: 'record-failed', reason: 'mismatch', message: "pod a: 1 of 2 predictions differ from the gate's: row 1 expected -1, got 1" },
      { kind: 'reply-failed', reason: 'mismatch', message: "pod a: 1 of 2 predictions differ from the gate's: row 1 expected -1, got 1" },
    ],
  },
  {
    name: 'a missing row is a mismatch',
    outcomes: [answer('a', { predictions: [1] })],
    expected: [
      { kind: 'record-failed', reason: 'mismatch', message: 'pod a answered 1 predictions for 2 probe rows' },
      { kind: 'reply-failed', reason: 'mismatch', message: 'pod a answered 1 predictions for 2 probe rows' },
    ],
  },
  {
    name: 'HTTP 500 is an http-error',
    outcomes: [answer('a', 'boom', 500)],
    expected: [{ kind: 'record-failed', reason: 'http-error', message: 'pod a answered HTTP 500: boom' }, { kind: 'reply-failed', reason: 'http-error', message: 'pod a answered HTTP 500: boom' }],
  },
  {
    name: '"does not exist" means no model was loaded, and outranks other failures',
    outcomes: [answer('a', { predictions: [1, 1] }), answer('b', { error: 'Model anomaly-detector does not exist' }, 404)],
    expected: [
      { kind: 'record-failed', reason: 'model-missing', message: `pod a: 1 of 2 predictions differ from the gate's: row 1 expected -1, got 1 | pod b has no model loaded (HTTP 404: {"error":"Model anomaly-detector does not exist"})` },
      { kind: 'reply-failed', reason: 'model-missing', message: `pod a: 1 of 2 predictions differ from the gate's: row 1 expected -1, got 1 | pod b has no model loaded (HTTP 404: {"error":"Model anomaly-detector does not exist"})` },
    ],
  },
  {
    name: 'a transport error after retries is an http-error',
    outcomes: [{ pod: 'a', kind: 'transport', error: 'no answer from http://x after 3 attempts: fetch failed (ECONNREFUSED)' }],
    expected: [
      { kind: 'record-failed', reason: 'http-error', message: 'pod a: no answer from http://x after 3 attempts: fetch failed (ECONNREFUSED)' },
      { kind: 'reply-failed', reason: 'http-error', message: 'pod a: no answer from http://x after 3 attempts: fetch failed (ECONNREFUSED)' },
    ],
  },
  {
    name: 'a 200 without predictions is an http-error',
    outcomes: [answer('a', { result: [1, -1] })],
    expected: [{ kind: 'record-failed', reason: 'http-error', message: 'pod a: answer has no "predictions" array' }, { kind: 'reply-failed', reason: 'http-error', message: 'pod a: answer has no "predictions" array' }],
  },
  {
    name: 'V2 regression within tolerance matches',
    model: predictiveV2, probe: { rows: [[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]], expected: [[0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 3, 4, 5]] },
    outcomes: [answer('a', { outputs: [{ name: 'output-0', shape: [2, 5], datatype: 'FP64', data: [0.1 + 1e-9, 0.2, 0.3, 0.4, 0.5, 1, 2, 3, 4, 5 + 4e-6] }] })],
    expected: [
      { kind: 'record-verified', pods: ['a'], matched: 2, message: 'verified 2 predictions on 1 new pod(s): a' },
      { kind: 'reply-verified', pods: ['a'], matched: 2 },
    ],
  },
  {
    name: 'V2 regression outside tolerance is a mismatch',
    model: predictiveV2, probe: { rows: [[1, 2, 3, 4, 5]], expected: [[0.1, 0.2, 0.3, 0.4, 0.5]] },
    outcomes: [answer('a', { outputs: [{ name: 'output-0', shape: [1, 5], datatype: 'FP64', data: [0.1, 0.2, 0.3, 0.4, 0.51] }] })],
    expected: [
      { kind: 'record-failed', reason: 'mismatch', message: "pod a: 1 of 1 predictions differ from the gate's: row 0 expected [0.1,0.2,0.3,0.4,0.5], got [0.1,0.2,0.3,0.4,0.51]" },
      { kind: 'reply-failed', reason: 'mismatch', message: "pod a: 1 of 1 predictions differ from the gate's: row 0 expected [0.1,0.2,0.3,0.4,0.5], got [0.1,0.2,0.3,0.4,0.51]" },
    ],
  },
];

describe('judge', () => {
  test.each(judgeCases)('$name', ({ model, probe: p, outcomes, expected }) => {
    expect(judge(outcomes, p ?? probe, model ?? anomaly)).toEqual(expected);
  });

  test('extractPredictions reshapes V2 outputs by shape and flattens labels', () => {
    expect(extractPredictions({ outputs: [{ shape: [2, 2], data: [1, 2, 3, 4] }] }, 'v2')).toEqual({ ok: true, predictions: [[1, 2], [3, 4]] });
    expect(extractPredictions({ outputs: [{ shape: [3], data: [1, -1, 1] }] }, 'v2')).toEqual({ ok: true, predictions: [1, -1, 1] });
    expect(extractPredictions({ outputs: [{ shape: [2, 1], data: [1, -1] }] }, 'v2')).toEqual({ ok: true, predictions: [1, -1] });
    expect(extractPredictions({ outputs: [] }, 'v2')).toEqual({ ok: false, why: 'answer has no outputs[0].data' });
  });

  test('labels compare exactly (no number/string coercion), floats relative + absolute', () => {
    expect(predictionMatches(1, '1', anomaly)).toBe(false);
    expect(predictionMatches(-1, -1.0, anomaly)).toBe(true);
    expect(predictionMatches([1000, 0], [1000.0009, 1e-7], predictive)).toBe(true);
    expect(predictionMatches([1000, 0], [1000.002, 0], predictive)).toBe(false);
    expect(predictionMatches([1, 2], [1, 2, 3], predictive)).toBe(false);
    expect(predictionMatches([1, 2], [1, Number.NaN], predictive)).toBe(false);
  });
});

describe('unreachableButGone (a probed pod restarted or went away meanwhile)', () => {
  const transport = (p: string): ProbeOutcome => ({ pod: p, kind: 'transport', error: 'no answer (ECONNREFUSED)' });
  const ok: ProbeOutcome = { pod: 'new-1', kind: 'answer', status: 200, body: { predictions: [1, -1] } };
  test.each([
    { name: 'restarting pod (not Ready now): wait', outcomes: [ok, transport('new-2')], now: [pod('new-1', RUN, true), pod('new-2', RUN, false)], expected: { kind: 'wait', reason: 'probed pods stopped serving meanwhile: new-2' } },
    { name: 'pod gone from the list: wait', outcomes: [transport('new-2')], now: [pod('new-1', RUN, true)], expected: { kind: 'wait', reason: 'probed pods stopped serving meanwhile: new-2' } },
    { name: 'pod terminating now: wait', outcomes: [transport('new-1')], now: [{ ...pod('new-1', RUN, true), terminating: true }], expected: { kind: 'wait', reason: 'probed pods stopped serving meanwhile: new-1' } },
    { name: 'still Ready and unreachable: judged (a failure of the release)', outcomes: [transport('new-1')], now: [pod('new-1', RUN, true)], expected: undefined },
    { name: 'every pod answered: judged', outcomes: [ok], now: [], expected: undefined },
  ])('$name', ({ outcomes, now, expected }) => {
    expect(unreachableButGone(outcomes, now)).toEqual(expected);
  });
});

describe('a restored release (decideRestore, judgeRestore)', () => {
  const STARTED = '2026-11-22T10:05:30.400Z';
  const restoring = (rb: Partial<NonNullable<ModelRunStatus['rollback']>> = {}): ModelRun => run({
    phase: 'Verifying', probe, release: { promoted: RUN, replaced: OLD },
    rollback: { release: OLD, startedAt: STARTED, ...rb },
    steps: { verify: { finished: '2026-11-22T10:05:00.000Z', outcome: 'mismatch' }, rollback: { finished: STARTED, outcome: 'restored' } },
  });
  const gateProbe: RestoredProbe = { check: 'gate-probe', rows, expected: [-1, 1], from: OLD };
  const restored = (name: string, serving: boolean, created: string): PodView => ({ ...pod(name, OLD, serving), created });
  const probeOf = (pods: string[]): VerifyAction => ({ kind: 'probe', targets: pods.map((p) => ({ pod: p, url: 'http://10.0.0.7:8080/v1/models/anomaly-detector:predict' })), body: { instances: rows } });

  test.each([
    // Created in the second restoring began (creationTimestamp has whole seconds) counts; the second before does not.
    { name: 'only the rollout\'s new pods of the restored release are probed', pods: [restored('r-new', true, '2026-11-22T10:05:30Z'), restored('r-draining', true, '2026-11-22T10:05:29Z'), pod('failed-1', RUN, true)], expected: [probeOf(['r-new'])] },
    { name: 'no new pod of the restored release yet: wait', pods: [restored('r-draining', true, '2026-11-22T10:00:00Z')], expected: [{ kind: 'wait', reason: `no Ready pod of the restored release ${OLD} yet` }] },
    { name: 'a new restored pod still starting: wait for it', pods: [restored('r-a', true, '2026-11-22T10:05:40Z'), restored('r-b', false, '2026-11-22T10:05:41Z')], expected: [{ kind: 'wait', reason: 'restored pods not Ready yet: r-b' }] },
    { name: 'a new restored pod terminating is not waited for', pods: [restored('r-a', true, '2026-11-22T10:05:40Z'), { ...restored('r-b', false, '2026-11-22T10:05:41Z'), terminating: true }], expected: [probeOf(['r-a'])] },
  ])('$name', ({ pods, expected }) => {
    expect(decideRestore(restoring(), pods, anomaly, gateProbe)).toEqual(expected);
  });

  test('a recorded verdict concludes from the record; nothing to probe with fails closed', () => {
    expect(decideRestore(restoring({ verified: true, check: 'gate-probe', message: 'm' }), [], anomaly, gateProbe)).toEqual([{ kind: 'conclude-restore', release: OLD, verified: true, check: 'gate-probe', message: 'm', pods: 0 }]);
    expect(decideRestore(restoring(), [], anomaly, undefined)).toEqual([{ kind: 'conclude-restore', release: OLD, verified: false, check: 'answers', message: `no probe rows to verify the restored release ${OLD} with`, pods: 0 }]);
  });

  test('gate-probe: the restored release must answer what its own gate approved', () => {
    const answer = (predictions: unknown[]): ProbeOutcome => ({ pod: 'r-new', kind: 'answer', status: 200, body: { predictions } });
    expect(judgeRestore(OLD, [answer([-1, 1])], gateProbe, anomaly)).toEqual([{ kind: 'conclude-restore', release: OLD, verified: true, check: 'gate-probe', message: `verified on 1 new pod(s) r-new: 2 predictions matched ${OLD}'s gate record`, pods: 1 }]);
    // The failed release's answers are not the restored release's.
    expect(judgeRestore(OLD, [answer([1, -1])], gateProbe, anomaly)[0]).toMatchObject({ kind: 'conclude-restore', verified: false, check: 'gate-probe' });
  });

  test('answers (no gate record of the restored release): one well-formed prediction per row', () => {
    const answers: RestoredProbe = { check: 'answers', rows };
    const answer = (predictions: unknown[]): ProbeOutcome => ({ pod: 'r-new', kind: 'answer', status: 200, body: { predictions } });
    expect(judgeRestore(OLD, [answer([1, 1])], answers, anomaly)[0]).toMatchObject({ verified: true, check: 'answers' });
    expect(judgeRestore(OLD, [answer([1, 0])], answers, anomaly)[0]).toMatchObject({ verified: false, message: 'pod r-new: row 1 answered 0, not a label in [1,-1]' });
    expect(judgeRestore(OLD, [answer([[1, 2, 3, 4, 5], [1, 2]])], answers, predictive)[0]).toMatchObject({ verified: false, message: 'pod r-new: row 1 answered [1,2], not a 5-float prediction' });
    expect(judgeRestore(OLD, [{ pod: 'r-new', kind: 'answer', status: 404, body: { error: 'Model anomaly-detector does not exist' } }], answers, anomaly)[0]).toMatchObject({ verified: false });
    expect(judgeRestore(OLD, [], answers, anomaly)[0]).toMatchObject({ verified: false, message: 'no pod was probed' });
  });
});
