import { parseCatalog } from '../../runtime/catalog.ts';
import {
  RECHECK_AFTER_MS, RETRY_FAILED_AFTER_MS, STALE_ATTEMPT_MS, attemptId, decideModel, decideServing, decideStart, looksLikeModel, predictionsFit, probeRows, servedObject,
  type BootstrapRecord, type BootstrapTrigger, type ModelStep, type ServingStep, type StartDecision,
} from './decide.ts';

const NOW = new Date('2026-11-30T10:00:00.000Z');
const ago = (ms: number): string => new Date(NOW.getTime() - ms).toISOString();
const A = attemptId(NOW);
const rec = (r: Partial<BootstrapRecord>): BootstrapRecord => ({ state: 'validated', attempt: 'old1', startedAt: ago(60_000), checkedAt: ago(60_000), secretVersion: '7', ...r });

describe('decideStart', () => {
  const rows: Array<[string, BootstrapTrigger, BootstrapRecord | undefined, string | undefined, StartDecision]> = [
    ['never checked: a tick starts', 'tick', undefined, '7', { kind: 'start', attempt: A, why: 'never checked' }],
    ['never checked: a Job event alone does not', 'job', undefined, '7', { kind: 'skip', reason: 'no check in progress' }],
    ['requested always starts', 'requested', rec({}), '7', { kind: 'start', attempt: A, why: 'requested' }],
    ['Secret changed', 'secret', rec({}), '8', { kind: 'start', attempt: A, why: 'the storage Secret changed' }],
    ['Secret event without a change', 'secret', rec({}), '7', { kind: 'skip', reason: 'last check validated, nothing changed' }],
    ['a missed Secret event is caught by the tick', 'tick', rec({}), '8', { kind: 'start', attempt: A, why: 'the storage Secret changed' }],
    ['validated within a day', 'tick', rec({ checkedAt: ago(RECHECK_AFTER_MS - 1) }), '7', { kind: 'skip', reason: 'last check validated, nothing changed' }],
    ['validated a day ago', 'tick', rec({ checkedAt: ago(RECHECK_AFTER_MS) }), '7', { kind: 'start', attempt: A, why: 'the last check is older than a day' }],
    ['failed just now: not every tick', 'tick', rec({ state: 'failed', checkedAt: ago(RETRY_FAILED_AFTER_MS - 1) }), '7', { kind: 'skip', reason: 'last check failed, nothing changed' }],
    ['failed a while ago: retried', 'tick', rec({ state: 'failed', checkedAt: ago(RETRY_FAILED_AFTER_MS) }), '7', { kind: 'start', attempt: A, why: 'the last check failed' }],
    ['in progress: any trigger continues it', 'job', rec({ state: 'in-progress', attempt: 'cur1' }), '7', { kind: 'continue', attempt: 'cur1' }],
    ['in progress: a tick continues it', 'tick', rec({ state: 'in-progress', attempt: 'cur1' }), '7', { kind: 'continue', attempt: 'cur1' }],
    ['in progress: a fresh request continues it', 'requested', rec({ state: 'in-progress', attempt: 'cur1' }), '7', { kind: 'continue', attempt: 'cur1' }],
    ['in progress: new credentials restart it', 'secret', rec({ state: 'in-progress', attempt: 'cur1' }), '8', { kind: 'start', attempt: A, why: 'the storage Secret changed during a check' }],
    ['in progress but abandoned', 'tick', rec({ state: 'in-progress', attempt: 'cur1', startedAt: ago(STALE_ATTEMPT_MS) }), '7', { kind: 'start', attempt: A, why: 'the previous check was abandoned' }],
  ];
  test.each(rows)('%s', (_name, trigger, record, version, want) => {
    expect(decideStart(trigger, record, version, NOW)).toEqual(want);
  });
});

describe('servedObject', () => {
  test.each([
    ['s3://model-storage/models/m/releases/placeholder/', { ok: true, bucket: 'model-storage', key: 'models/m/releases/placeholder/model.pkl' }],
    ['s3://model-storage/models/m/releases/r1/model.joblib', { ok: true, bucket: 'model-storage', key: 'models/m/releases/r1/model.joblib' }],
    ['pvc://model-storage-pvc/m', { ok: false, why: 'storageUri "pvc://model-storage-pvc/m" is not s3://<bucket>/<key>' }],
    ['s3://model-storage/models/../x', { ok: false, why: 'storageUri "s3://model-storage/models/../x" has an empty or relative segment' }],
  ])('%s', (uri, want) => expect(servedObject(uri)).toEqual(want));
});

test('looksLikeModel: a pickle protocol 2..5 header only', () => {
  expect([Buffer.from([0x80, 4]), Buffer.from([0x80, 6]), Buffer.from('<h'), Buffer.from([0x80]), undefined].map(looksLikeModel)).toEqual([true, false, false, false, false]);
});

const catalog = parseCatalog(`
models:
  - { name: m, inferenceService: m-isvc, notebook: { gitUrl: 'https://x/y.git', gitRef: main, path: n.ipynb, image: i }, features: { count: 3 }, output: { kind: label, labels: [1, -1] }, storage: { kind: s3 } }
  - { name: r, inferenceService: r-isvc, notebook: { gitUrl: 'https://x/y.git', gitRef: main, path: n.ipynb, image: i }, features: { count: 2 }, output: { kind: regression, width: 2 }, storage: { kind: s3 } }
`);
const model = catalog.models[0]!;
const regression = catalog.models[1]!;

describe('decideModel', () => {
  const served = servedObject('s3://b-1/models/m/releases/placeholder/');
  const rows: Array<[string, Parameters<typeof decideModel>[0], ModelStep]> = [
    ['object present and a model: left as it is', { model, served, object: { exists: true, head: Buffer.from([0x80, 4]) }, job: { state: 'none' } }, { kind: 'object-ready' }],
    ['object present, not a model: named, untouched', { model, served, object: { exists: true, head: Buffer.from('PK') }, job: { state: 'none' } },
      { kind: 'fail', stage: 'placeholder', reason: 'not-a-model', message: 'm: s3://b-1/models/m/releases/placeholder/model.pkl exists but is not a model (not a pickle/joblib file); left untouched' }],
    ['missing: a Job', { model, served, object: { exists: false }, job: { state: 'none' } }, { kind: 'create-job' }],
    ['missing, Job running: wait', { model, served, object: { exists: false }, job: { state: 'running' } }, { kind: 'wait', why: 'm: placeholder Job running' }],
    ['Job failed', { model, served, object: { exists: false }, job: { state: 'failed', message: 'upload refused: HTTP 403' } },
      { kind: 'fail', stage: 'placeholder', reason: 'job-failed', message: 'm: placeholder Job failed: upload refused: HTTP 403' }],
    ['Job done: promote its staging object', { model, served, object: { exists: false }, job: { state: 'succeeded', sha256: 'a'.repeat(64), bytes: 10 } }, { kind: 'promote-staging', sha256: 'a'.repeat(64), bytes: 10 }],
    ['Job done without a result', { model, served, object: { exists: false }, job: { state: 'succeeded', problem: 'job x left no termination message' } },
      { kind: 'fail', stage: 'placeholder', reason: 'job-failed', message: 'm: placeholder Job reported no upload: job x left no termination message' }],
    ['predictor not on S3', { model, served: servedObject('pvc://p/m'), object: { exists: false }, job: { state: 'none' } },
      { kind: 'fail', stage: 'reconcile', reason: 'no-s3-storage-uri', message: 'm: InferenceService m-isvc: storageUri "pvc://p/m" is not s3://<bucket>/<key>' }],
  ];
  test.each(rows)('%s', (_name, view, want) => expect(decideModel(view)).toEqual(want));
});

describe('decideServing', () => {
  const rows: Array<[string, Parameters<typeof decideServing>[0], ServingStep]> = [
    ['uploaded now: roll once', { model, ready: false, annotation: undefined, uploadedMark: 'abc', servingPods: 0 }, { kind: 'roll', value: 'abc' }],
    ['rolled, new pods not serving yet', { model, ready: false, annotation: 'abc', uploadedMark: 'abc', servingPods: 0 }, { kind: 'wait', why: 'm: no serving predictor pod with the new model yet' }],
    ['rolled and serving', { model, ready: true, annotation: 'abc', uploadedMark: 'abc', servingPods: 1 }, { kind: 'probe' }],
    ['existing object, Ready: just probe', { model, ready: true, annotation: undefined, uploadedMark: undefined, servingPods: 2 }, { kind: 'probe' }],
    ['existing object, not Ready: roll once per attempt', { model, ready: false, annotation: undefined, uploadedMark: undefined, servingPods: 0 }, { kind: 'roll', value: 'retry-att1' }],
  ];
  test.each(rows)('%s', (_name, view, want) => expect(decideServing(view, 'att1')).toEqual(want));
});

describe('predictionsFit', () => {
  test.each([
    [model, [1, -1], 2, { ok: true }],
    [model, [[1], [-1]], 2, { ok: true }],
    [model, [1, 0], 2, { ok: false, why: 'prediction 0 is not one of [1,-1]' }],
    [model, [1], 2, { ok: false, why: '1 predictions for 2 rows' }],
    [regression, [[0, 0.5], [1, 2]], 2, { ok: true }],
    [regression, [[0], [1]], 2, { ok: false, why: 'prediction [0] is not 2 number(s)' }],
  ])('%#', (m, predictions, rows, want) => expect(predictionsFit(predictions, rows, m)).toEqual(want));
  test('probe rows have the declared width', () => expect(probeRows(45).map((r) => r.length)).toEqual([45, 45]));
});
