import { ModelCopied, RunFailed } from '../../events/index.ts';
import { findModel, loadCatalog, type CatalogModel } from '../../runtime/catalog.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { decideCopy, type CopyAction, type CopyInput } from './decide.ts';

const model = findModel(loadCatalog('config/models.yaml'), 'predictive-analytics') as CatalogModel;
const NOW = new Date('2026-11-22T10:00:00.000Z');
const RUN = 'predictive-analytics-0123456789';
const JOB = `${RUN}-copy`;
const SHA = 'd'.repeat(64);
const FOLDER = `.runs/${RUN}/predictive-analytics`;

function modelRun(status: ModelRunStatus, profile: 'cpu' | 'gpu' = 'gpu'): ModelRun {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
    metadata: { name: RUN, namespace: 'mlops', uid: 'uid-1' },
    spec: { model: 'predictive-analytics', trigger: 'schedule', idempotencyKey: 'k', profile },
    status,
  };
}
const copying = (): ModelRun => modelRun({ phase: 'Copying', step: 'copy', steps: { copy: { started: '2026-11-22T09:55:00.000Z', job: JOB } } });

function goodResult(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { ok: true, files: [{ name: 'metrics.json', bytes: 100, sha256: 'e'.repeat(64) }, { name: 'model.pkl', bytes: 214_050, sha256: SHA }], bytes: 214_150, sha256: SHA, path: FOLDER, ...over };
}
const trigger = (profile: 'cpu' | 'gpu' = 'gpu'): CopyInput => ({ kind: 'trigger', run: RUN, profile });
const finished = (result: unknown, over: Record<string, unknown> = {}): CopyInput => ({ kind: 'job-finished', run: RUN, evidence: { job: JOB, succeeded: true, ...(result === undefined ? {} : { result }), ...over } });
const decide = (input: CopyInput, run: ModelRun | undefined): CopyAction[] => decideCopy(input, { ...(run ? { run } : {}), model, now: NOW });

describe('copy-gpu-model decide: the trigger', () => {
  test.each<[string, CopyInput, ModelRun | undefined, CopyAction[]]>([
    ['GPU training.succeeded on a Copying run → the copy Job and its start record (deadline now + copyMinutes)', trigger(), modelRun({ phase: 'Copying' }), [
      { kind: 'create-job', run: RUN, job: JOB },
      { kind: 'record-started', run: RUN, job: JOB, deadline: '2026-11-22T10:30:00.000Z' },
    ]],
    ['redelivery while the copy runs → same actions (create is idempotent, the effect keeps the first start)', trigger(), copying(), [
      { kind: 'create-job', run: RUN, job: JOB },
      { kind: 'record-started', run: RUN, job: JOB, deadline: '2026-11-22T10:30:00.000Z' },
    ]],
    ['CPU event', trigger('cpu'), modelRun({ phase: 'Copying' }), [{ kind: 'ignore', reason: 'CPU runs train on the shared PVC: nothing to copy' }]],
    ['GPU event for a CPU run', trigger('gpu'), modelRun({ phase: 'Gating' }, 'cpu'), [{ kind: 'ignore', reason: 'CPU runs train on the shared PVC: nothing to copy' }]],
    ['no ModelRun', trigger(), undefined, [{ kind: 'ignore', reason: `no ModelRun ${RUN} (deleted or not ours)` }]],
    ['run still Training', trigger(), modelRun({ phase: 'Training' }), [{ kind: 'ignore', reason: 'run is Training, not Copying' }]],
    ['copy already finished', trigger(), modelRun({ phase: 'Gating', steps: { copy: { finished: '2026-11-22T09:58:00.000Z', outcome: 'copied' } } }), [{ kind: 'ignore', reason: 'copy already copied' }]],
  ])('%s', (_name, input, run, expected) => {
    expect(decide(input, run)).toEqual(expected);
  });
});

describe('copy-gpu-model decide: the finished copy Job', () => {
  test('a verified copy → Gating with the artifact and model.copied', () => {
    const actions = decide(finished(goodResult()), copying());
    const artifact = { path: `${FOLDER}/model.pkl`, bytes: 214_050, sha256: SHA };
    expect(actions).toEqual([
      { kind: 'record-copied', run: RUN, artifact, message: 'copied 2 files (214150 bytes); model.pkl sha256 verified' },
      { kind: 'reply-copied', data: { model: 'predictive-analytics', run: RUN, ...artifact } },
    ]);
    expect(ModelCopied.safeParse((actions[1] as { data: unknown }).data).success).toBe(true);
  });

  test('a truncated result that kept model.pkl first is still a verified copy', () => {
    const actions = decide(finished(goodResult({ truncated: true, files: [{ name: 'model.pkl', bytes: 214_050, sha256: SHA }] })), copying());
    expect(actions.map((a) => a.kind)).toEqual(['record-copied', 'reply-copied']);
  });

  const failures: Array<[string, CopyInput, string, string]> = [
    ['no termination message', finished(undefined, { problem: `job ${JOB} left no termination message` }), 'no-result', `job ${JOB} left no termination message`],
    ['termination message not JSON', finished(undefined, { problem: `job ${JOB} termination message is not JSON` }), 'no-result', `job ${JOB} termination message is not JSON`],
    ['Job killed on its deadline', finished(undefined, { succeeded: false, failure: 'DeadlineExceeded: too long', problem: `job ${JOB} left no termination message` }), 'job-failed', `job ${JOB} failed: DeadlineExceeded: too long; job ${JOB} left no termination message`],
    ['copy.py reports a sha256 mismatch', finished({ ok: false, files: [], bytes: 0, sha256: null, path: FOLDER, error: 'sha256 mismatch for model.pkl: source a, destination b' }), 'copy-failed', 'copy failed: sha256 mismatch for model.pkl: source a, destination b'],
    ['copy.py: source missing', finished({ ok: false, files: [], bytes: 0, sha256: null, path: FOLDER, error: `source directory missing: ${FOLDER}` }), 'copy-failed', `copy failed: source directory missing: ${FOLDER}`],
    ['copy.py usage error', finished({ ok: false, error: 'usage: SRC_ROOT is not a directory: /mnt/gpu' }), 'copy-failed', 'copy failed: usage: SRC_ROOT is not a directory: /mnt/gpu'],
    ['ok:false without an error', finished({ ok: false }), 'copy-failed', 'copy failed: no error given'],
    ['Job failed although the result says ok', finished(goodResult(), { succeeded: false, failure: 'BackoffLimitExceeded' }), 'job-failed', `job ${JOB} failed: BackoffLimitExceeded although its result says ok`],
    ['result is an array', finished([]), 'invalid-result', 'copy result does not match the copy schema: Invalid input: expected object, received array'],
    ['unknown key', finished(goodResult({ verified: true })), 'invalid-result', 'copy result does not match the copy schema: Unrecognized key: "verified"'],
    ['ok is a string', finished(goodResult({ ok: 'true' })), 'invalid-result', 'copy result does not match the copy schema: ok: Invalid input: expected boolean, received string'],
    ['wrong path', finished(goodResult({ path: '.runs/other/predictive-analytics' })), 'invalid-result', `copy result path ".runs/other/predictive-analytics" is not ${FOLDER}`],
    ['sha256 missing', finished(goodResult({ sha256: null })), 'invalid-result', 'copy result has no valid sha256 of model.pkl'],
    ['sha256 not hex', finished(goodResult({ sha256: 'Z'.repeat(64) })), 'invalid-result', 'copy result has no valid sha256 of model.pkl'],
    ['model.pkl not listed', finished(goodResult({ files: [{ name: 'metrics.json', bytes: 1, sha256: SHA }] })), 'invalid-result', 'copy result does not list model.pkl'],
    ['files missing', finished(goodResult({ files: undefined })), 'invalid-result', 'copy result does not list model.pkl'],
    ['model.pkl sha256 inconsistent', finished(goodResult({ files: [{ name: 'model.pkl', bytes: 1, sha256: 'f'.repeat(64) }] })), 'invalid-result', 'copy result sha256 of model.pkl is inconsistent'],
  ];
  test.each(failures.map(([name, input, reason, message]) => ({ name, input, reason, message })))('$name → run.failed ($reason)', ({ input, reason, message }) => {
    const actions = decide(input, copying());
    expect(actions).toEqual([
      { kind: 'fail-run', run: RUN, reason, message },
      { kind: 'reply-run-failed', data: { model: 'predictive-analytics', run: RUN, step: 'copy', reason, message } },
    ]);
    expect(RunFailed.safeParse((actions[1] as { data: unknown }).data).success).toBe(true);
  });
});

describe('copy-gpu-model decide: after the outcome', () => {
  const artifact = { path: `${FOLDER}/model.pkl`, bytes: 214_050, sha256: SHA };
  test.each<[string, ModelRun, CopyAction[]]>([
    ['copied, gate not started → the same model.copied again', modelRun({ phase: 'Gating', steps: { copy: { finished: '2026-11-22T09:58:00.000Z', outcome: 'copied' } }, artifact }), [
      { kind: 'reply-copied', data: { model: 'predictive-analytics', run: RUN, ...artifact } },
    ]],
    ['copied, gate started → silent', modelRun({ phase: 'Gating', steps: { copy: { finished: '2026-11-22T09:58:00.000Z', outcome: 'copied' }, gate: { started: '2026-11-22T09:59:00.000Z' } }, artifact }), [
      { kind: 'ignore', reason: 'copy done; gate already started' },
    ]],
    ['failed → the same run.failed again', modelRun({ phase: 'Failed', steps: { copy: { finished: '2026-11-22T09:58:00.000Z', outcome: 'copy-failed', message: 'copy failed: disk full' } } }), [
      { kind: 'reply-run-failed', data: { model: 'predictive-analytics', run: RUN, step: 'copy', reason: 'copy-failed', message: 'copy failed: disk full' } },
    ]],
    ['run Failed by the watchdog before the Job ended → silent', modelRun({ phase: 'Failed', steps: { copy: { started: '2026-11-22T09:55:00.000Z' } } }), [
      { kind: 'ignore', reason: 'run is Failed; a late copy Job changes nothing' },
    ]],
  ])('%s', (_name, run, expected) => {
    expect(decide(finished(goodResult()), run)).toEqual(expected);
  });
});
