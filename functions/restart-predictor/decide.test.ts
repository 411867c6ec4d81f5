import { loadCatalog } from '../../runtime/catalog.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { decideRestart, noPreviousMessage, type RestartAction, type RestartInput, type RestartState } from './decide.ts';

const catalog = loadCatalog('config/models.yaml');
const model = catalog.models.find((m) => m.name === 'anomaly-detector')!;
const RUN = 'anomaly-detector-00000000a1';
const PREV = 'anomaly-detector-00000000p0';
const NOW = new Date('2026-11-22T10:00:00.000Z');
const VERIFY_DEADLINE = '2026-11-22T10:15:00.000Z';

function run(status: ModelRunStatus): ModelRun {
  return {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
    metadata: { name: RUN, uid: 'u1' },
    spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'k', profile: 'cpu' },
    status,
  };
}

const promoting = (extra: ModelRunStatus = {}): ModelRun => run({ phase: 'Promoting', ...extra });
const verifying = (extra: ModelRunStatus = {}): ModelRun =>
  run({ phase: 'Verifying', release: { promoted: RUN, replaced: PREV }, steps: { promote: { started: 'x', finished: 'y' }, verify: { finished: 'z', outcome: 'mismatch', message: 'pod p: row 0 expected 1, got -1' } }, ...extra });

const isvc = (release?: string): RestartState['isvc'] => ({ name: 'anomaly-detector', exists: true, ...(release ? { release } : {}) });
const okResult = (release: string, previousRelease: string | null) => ({ ok: true, release, previousRelease, sha256: 'a'.repeat(64), bytes: 1234, servedPath: 'anomaly-detector/model.pkl', kept: [], pruned: [] });
const promoteDone = (result: unknown, succeeded = true, problem?: string): RestartInput => ({ kind: 'job-finished', run: RUN, job: 'promote', succeeded, result, ...(problem ? { problem } : {}) });
const rollbackDone = (result: unknown, succeeded = true): RestartInput => ({ kind: 'job-finished', run: RUN, job: 'rollback', succeeded, result });

const rolledBackMsg = `release ${RUN} failed verification (pod p: row 0 expected 1, got -1); rolled back to ${PREV}`;

const cases: Array<{ name: string; input: RestartInput; run?: ModelRun; isvc?: RestartState['isvc']; expected: RestartAction[] }> = [
  { name: 'approval of an unknown run is ignored', input: { kind: 'approved', run: RUN }, expected: [{ kind: 'ignore', reason: `no ModelRun ${RUN}` }] },
  {
    name: 'approval of a Promoting run creates the promote Job from staging and records it',
    input: { kind: 'approved', run: RUN }, run: promoting(),
    expected: [
      { kind: 'create-job', job: 'promote', name: `${RUN}-promote`, release: RUN, source: 'staging' },
      { kind: 'record-job-started', job: 'promote', name: `${RUN}-promote` },
    ],
  },
  { name: 'approval redelivered after the Job started does nothing', input: { kind: 'approved', run: RUN }, run: promoting({ steps: { promote: { started: 't' } } }), expected: [{ kind: 'ignore', reason: 'promote Job already started' }] },
  { name: 'approval of a run in another phase is ignored', input: { kind: 'approved', run: RUN }, run: run({ phase: 'Gating' }), expected: [{ kind: 'ignore', reason: 'run is Gating, not Promoting' }] },
  {
    name: 'promote ok: patch the predictor, record the release, reply predictor.restarted',
    input: promoteDone(okResult(RUN, PREV)), run: promoting({ steps: { promote: { started: 't' } } }), isvc: isvc(PREV),
    expected: [
      { kind: 'record-promoted', release: RUN, previousRelease: PREV, verifyDeadline: VERIFY_DEADLINE, message: `promoted ${RUN} replacing ${PREV}; anomaly-detector rolling` },
      { kind: 'patch-isvc', isvc: 'anomaly-detector', release: RUN },
      { kind: 'reply-restarted', release: RUN, previousRelease: PREV, inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
    ],
  },
  {
    name: 'promote ok on a first release (no previous), predictor already annotated: no second patch',
    input: promoteDone(okResult(RUN, null)), run: promoting(), isvc: isvc(RUN),
    expected: [
      { kind: 'record-promoted', release: RUN, previousRelease: null, verifyDeadline: VERIFY_DEADLINE, message: `promoted ${RUN}; anomaly-detector rolling` },
      { kind: 'reply-restarted', release: RUN, previousRelease: null, inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
    ],
  },
  {
    name: 'promote reported ok: false → run failed, predictor untouched',
    input: promoteDone({ ok: false, release: RUN, previousRelease: PREV, error: 'staged model missing' }), run: promoting(), isvc: isvc(PREV),
    expected: [
      { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: staged model missing`, stepMessage: 'staged model missing' },
      { kind: 'reply-run-failed', step: 'promote', reason: 'promote-failed', message: `promotion of ${RUN} failed: staged model missing` },
    ],
  },
  {
    name: 'a Job without a termination message fails closed',
    input: promoteDone(undefined, false, `job ${RUN}-promote left no termination message`), run: promoting(), isvc: isvc(PREV),
    expected: [
      { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: job ${RUN}-promote left no termination message`, stepMessage: `job ${RUN}-promote left no termination message` },
      { kind: 'reply-run-failed', step: 'promote', reason: 'promote-failed', message: `promotion of ${RUN} failed: job ${RUN}-promote left no termination message` },
    ],
  },
  {
    name: 'ok JSON from a Job whose condition is Failed still fails',
    input: promoteDone(okResult(RUN, PREV), false), run: promoting(), isvc: isvc(PREV),
    expected: [
      { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: the Job failed`, stepMessage: 'the Job failed' },
      { kind: 'reply-run-failed', step: 'promote', reason: 'promote-failed', message: `promotion of ${RUN} failed: the Job failed` },
    ],
  },
  {
    name: 'a result naming another release fails',
    input: promoteDone(okResult('other-run', PREV)), run: promoting(), isvc: isvc(PREV),
    expected: [
      { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: the Job served release other-run, expected ${RUN}`, stepMessage: `the Job served release other-run, expected ${RUN}` },
      { kind: 'reply-run-failed', step: 'promote', reason: 'promote-failed', message: `promotion of ${RUN} failed: the Job served release other-run, expected ${RUN}` },
    ],
  },
  {
    name: 'promote ok but the InferenceService is missing → run failed',
    input: promoteDone(okResult(RUN, PREV)), run: promoting(), isvc: { name: 'anomaly-detector', exists: false },
    expected: [
      { kind: 'finish-failed', step: 'promote', message: `InferenceService anomaly-detector not found: ${RUN} was promoted on the volume but no predictor was restarted`, stepMessage: `InferenceService anomaly-detector not found: ${RUN} was promoted on the volume but no predictor was restarted` },
      { kind: 'reply-run-failed', step: 'promote', reason: 'inferenceservice-missing', message: `InferenceService anomaly-detector not found: ${RUN} was promoted on the volume but no predictor was restarted` },
    ],
  },
  {
    name: 'stopped between recording Verifying and patching: the promote Job update finishes the restart',
    input: promoteDone(okResult(RUN, PREV)), run: run({ phase: 'Verifying', release: { promoted: RUN, replaced: PREV }, steps: { promote: { started: 'x', finished: 'y' } } }), isvc: isvc(PREV),
    expected: [
      { kind: 'patch-isvc', isvc: 'anomaly-detector', release: RUN },
      { kind: 'reply-restarted', release: RUN, previousRelease: PREV, inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
    ],
  },
  {
    name: 'stopped between recording Verifying and patching: a re-sent approval finishes the restart too',
    input: { kind: 'approved', run: RUN }, run: run({ phase: 'Verifying', release: { promoted: RUN, replaced: PREV }, steps: { promote: { started: 'x', finished: 'y' } } }), isvc: isvc(PREV),
    expected: [
      { kind: 'patch-isvc', isvc: 'anomaly-detector', release: RUN },
      { kind: 'reply-restarted', release: RUN, previousRelease: PREV, inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
    ],
  },
  {
    name: 'a run already verifying on its release is not patched again',
    input: { kind: 'approved', run: RUN }, run: run({ phase: 'Verifying', release: { promoted: RUN, replaced: PREV }, steps: { promote: { started: 'x', finished: 'y' } } }), isvc: isvc(RUN),
    expected: [{ kind: 'ignore', reason: 'run is Verifying, not Promoting' }],
  },
  { name: 'a promote Job update after the step finished is ignored', input: promoteDone(okResult(RUN, PREV)), run: verifying(), isvc: isvc(RUN), expected: [{ kind: 'ignore', reason: 'promote already finished' }] },
  { name: 'a promote Job update for a run ended meanwhile is ignored', input: promoteDone(okResult(RUN, PREV)), run: run({ phase: 'Failed' }), isvc: isvc(PREV), expected: [{ kind: 'ignore', reason: 'run is Failed, not Promoting' }] },
  {
    name: 'deployment.failed with a previous release → rollback Job serving the kept release',
    input: { kind: 'deployment-failed', run: RUN }, run: verifying(),
    expected: [
      { kind: 'create-job', job: 'rollback', name: `${RUN}-rollback`, release: PREV, source: 'release' },
      { kind: 'record-job-started', job: 'rollback', name: `${RUN}-rollback` },
    ],
  },
  {
    name: 'deployment.failed without a previous release → run Failed, nothing rolled back',
    input: { kind: 'deployment-failed', run: RUN }, run: verifying({ release: { promoted: RUN, replaced: null } }),
    expected: [
      { kind: 'finish-not-rolled-back', message: noPreviousMessage(RUN) },
      { kind: 'reply-rolledback', failedRelease: RUN, restoredRelease: null, message: `no previous release to roll back to; ${RUN} is still served` },
    ],
  },
  {
    name: 'deployment.failed redelivered after "nothing to roll back" answers the same',
    input: { kind: 'deployment-failed', run: RUN }, run: run({ phase: 'Failed', steps: { rollback: { finished: 't', outcome: 'not-rolled-back' } } }),
    expected: [{ kind: 'reply-rolledback', failedRelease: RUN, restoredRelease: null, message: noPreviousMessage(RUN) }],
  },
  { name: 'deployment.failed while the rollback Job runs does nothing', input: { kind: 'deployment-failed', run: RUN }, run: verifying({ steps: { rollback: { started: 't' } } }), expected: [{ kind: 'ignore', reason: 'rollback Job already started' }] },
  {
    // The restored release is announced by verify-endpoint once verified; a late deployment.failed adds nothing.
    name: 'deployment.failed redelivered after the rollback is silent',
    input: { kind: 'deployment-failed', run: RUN }, run: run({ phase: 'RolledBack', message: rolledBackMsg, release: { promoted: RUN, replaced: PREV, restored: PREV }, steps: { rollback: { started: 's', finished: 't', outcome: 'restored' } } }),
    expected: [{ kind: 'ignore', reason: 'rollback already ended (restored)' }],
  },
  { name: 'deployment.failed for a run that succeeded is ignored', input: { kind: 'deployment-failed', run: RUN }, run: run({ phase: 'Succeeded' }), expected: [{ kind: 'ignore', reason: 'run is Succeeded, not Verifying' }] },
  {
    name: 'rollback ok: record the restore, then the annotation back to the previous release; the run stays Verifying',
    input: rollbackDone(okResult(PREV, RUN)), run: verifying({ steps: { verify: { finished: 'z', outcome: 'mismatch', message: 'pod p: row 0 expected 1, got -1' }, rollback: { started: 't' } } }), isvc: isvc(RUN),
    expected: [
      { kind: 'record-restoring', release: PREV, message: `restored ${PREV} on the volume; anomaly-detector rolling back` },
      { kind: 'patch-isvc', isvc: 'anomaly-detector', release: PREV },
    ],
  },
  {
    // Crash-safe order: status.rollback is written before the patch; whatever wakes the step next finishes it.
    name: 'stopped between recording the restore and patching: any delivery (here the reconcile\'s deployment-failed) patches',
    input: { kind: 'deployment-failed', run: RUN },
    run: verifying({ rollback: { release: PREV, startedAt: 't' }, steps: { verify: { finished: 'z', outcome: 'mismatch' }, rollback: { started: 's', finished: 't', outcome: 'restored' } } }), isvc: isvc(RUN),
    expected: [{ kind: 'patch-isvc', isvc: 'anomaly-detector', release: PREV }],
  },
  {
    name: 'restoring, predictor already back on the previous release: verify-endpoint\'s turn',
    input: rollbackDone(okResult(PREV, RUN)),
    run: verifying({ rollback: { release: PREV, startedAt: 't' }, steps: { verify: { finished: 'z', outcome: 'mismatch' }, rollback: { started: 's', finished: 't', outcome: 'restored' } } }), isvc: isvc(PREV),
    expected: [{ kind: 'ignore', reason: `restoring ${PREV}: verify-endpoint checks its new pods` }],
  },
  {
    name: 'a restore with a verdict is never patched again (the run ends by verify-endpoint)',
    input: { kind: 'deployment-failed', run: RUN },
    run: verifying({ rollback: { release: PREV, startedAt: 't', verified: false, finished: 'u' }, steps: { verify: { finished: 'z', outcome: 'mismatch' }, rollback: { started: 's', finished: 't', outcome: 'restored' } } }), isvc: isvc(RUN),
    expected: [{ kind: 'ignore', reason: 'rollback already ended (restored)' }],
  },
  {
    name: 'rollback failed → run Failed naming the still-served release',
    input: rollbackDone({ ok: false, release: PREV, previousRelease: RUN, error: `release ${PREV} is not kept` }), run: verifying(), isvc: isvc(RUN),
    expected: [
      { kind: 'finish-failed', step: 'rollback', message: `rollback to ${PREV} failed: release ${PREV} is not kept; ${RUN} is still served`, stepMessage: `release ${PREV} is not kept` },
      { kind: 'reply-run-failed', step: 'rollback', reason: 'rollback-failed', message: `rollback to ${PREV} failed: release ${PREV} is not kept; ${RUN} is still served` },
    ],
  },
  { name: 'a rollback Job update after the rollback finished is ignored', input: rollbackDone(okResult(PREV, RUN)), run: run({ phase: 'RolledBack', steps: { rollback: { finished: 't' } } }), isvc: isvc(PREV), expected: [{ kind: 'ignore', reason: 'rollback already finished' }] },
];

describe('decideRestart', () => {
  test.each(cases)('$name', ({ input, run: r, isvc: i, expected }) => {
    const state: RestartState = { isvc: i ?? isvc(), now: NOW, ...(r ? { run: r } : {}) };
    expect(decideRestart(input, state, model)).toEqual(expected);
  });
});

// Day-2 (docs/day2.md): a pinned model's approved run ends without a promotion; a manual rollback starts at Promoting.
describe('restart-predictor day-2 decisions (table)', () => {
  const OLD = 'anomaly-detector-0000000old';
  const manual = (status?: ModelRunStatus, force = false): ModelRun => ({
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', metadata: { name: RUN, uid: 'u2' },
    spec: { model: 'anomaly-detector', trigger: 'manual-rollback', idempotencyKey: 'k', profile: 'cpu', requestedBy: 'alice', rollback: { release: OLD, ...(force ? { force } : {}) } },
    ...(status ? { status } : {}),
  });
  const target = (verdict?: 'approved' | 'rejected'): ModelRun => ({
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', metadata: { name: OLD, uid: 'u3' },
    spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'o', profile: 'cpu' },
    status: { phase: 'Succeeded', ...(verdict ? { gate: { verdict } } : {}), probe: { rows: [[1, 2]], expected: [1] } },
  });
  const approved: RestartInput = { kind: 'approved', run: RUN };
  const table: Array<{ name: string; state: Omit<RestartState, 'now'>; input?: RestartInput; expected: RestartAction[] }> = [
    {
      name: 'pinned: an approved Promoting run ends Succeeded unpromoted, naming the pin',
      state: { run: promoting({ gate: { verdict: 'approved' } }), isvc: isvc(PREV), controls: { pinned: { release: PREV, by: 'bob', at: '2026-11-22T08:00:00Z' } } },
      expected: [{ kind: 'finish-pinned', release: PREV, by: 'bob', message: `approved but not promoted: release ${PREV} pinned by bob at 2026-11-22T08:00:00Z (mlops unpin anomaly-detector to promote again)` }],
    },
    {
      name: 'pinned after the promote Job started: the promotion under way goes on',
      state: { run: promoting({ steps: { promote: { started: 't' } } }), isvc: isvc(PREV), controls: { pinned: { release: PREV, by: 'bob' } } },
      expected: [{ kind: 'ignore', reason: 'promote Job already started' }],
    },
    {
      name: 'manual rollback to an approved release: carry its gate record, Promoting, the promote Job serves the kept release',
      state: { run: manual(), target: target('approved'), isvc: isvc(PREV) },
      expected: [
        { kind: 'start-manual-rollback', release: OLD, evidence: { gate: { verdict: 'approved' }, probe: { rows: [[1, 2]], expected: [1] } }, message: `rolling back anomaly-detector to ${OLD} (serving ${PREV}) on request of alice` },
        { kind: 'create-job', job: 'promote', name: `${RUN}-promote`, release: OLD, source: 'release' },
        { kind: 'record-job-started', job: 'promote', name: `${RUN}-promote` },
      ],
    },
    {
      name: 'manual rollback to a release the gate never approved: refused (Pending → Failed)',
      state: { run: manual(), target: target('rejected'), isvc: isvc(PREV) },
      expected: [{ kind: 'finish-pending-failed', message: `release ${OLD} was never approved by the gate (no approved run ${OLD} of anomaly-detector); mlops rollback --force overrides` }],
    },
    {
      name: 'manual rollback, forced, to a release with no record: goes ahead without evidence',
      state: { run: manual(undefined, true), isvc: isvc(PREV) },
      expected: [
        { kind: 'start-manual-rollback', release: OLD, evidence: {}, message: `rolling back anomaly-detector to ${OLD} (serving ${PREV}) on request of alice (forced)` },
        { kind: 'create-job', job: 'promote', name: `${RUN}-promote`, release: OLD, source: 'release' },
        { kind: 'record-job-started', job: 'promote', name: `${RUN}-promote` },
      ],
    },
    { name: 'manual rollback to the release already served: refused', state: { run: manual(), target: target('approved'), isvc: isvc(OLD) }, expected: [{ kind: 'finish-pending-failed', message: `release ${OLD} is already served by anomaly-detector: nothing to roll back` }] },
    {
      name: 'manual rollback ignores a pin (a person chose the release; the CLI checked the pin)',
      state: { run: manual({ phase: 'Promoting' }), isvc: isvc(PREV), controls: { pinned: { release: PREV, by: 'bob' } } },
      expected: [
        { kind: 'create-job', job: 'promote', name: `${RUN}-promote`, release: OLD, source: 'release' },
        { kind: 'record-job-started', job: 'promote', name: `${RUN}-promote` },
      ],
    },
    {
      name: 'manual rollback: its promote Job must have served the kept release, then Verifying and the predictor patch',
      input: promoteDone(okResult(OLD, PREV)), state: { run: manual({ phase: 'Promoting', steps: { promote: { started: 't' } } }), isvc: isvc(PREV) },
      expected: [
        { kind: 'record-promoted', release: OLD, previousRelease: PREV, verifyDeadline: VERIFY_DEADLINE, message: `rolled back on request to ${OLD} replacing ${PREV}; anomaly-detector rolling` },
        { kind: 'patch-isvc', isvc: 'anomaly-detector', release: OLD },
        { kind: 'reply-restarted', release: OLD, previousRelease: PREV, inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
      ],
    },
  ];
  test.each(table)('$name', ({ state, input, expected }) => {
    expect(decideRestart(input ?? approved, { ...state, now: NOW }, model)).toEqual(expected);
  });
});

// A model served from a bucket (docs/storage.md "Promotion into the bucket"): the uploaded object's sha256 decides,
// one patch carries storageUri and the release annotation, a rollback needs no Job.
describe('s3 storage', () => {
  const s3Model = { ...model, storage: { ...model.storage, kind: 's3' as const } };
  const SHA = 'a'.repeat(64);
  const uri = (release: string): string => `s3://model-storage/models/anomaly-detector/releases/${release}/`;
  const key = `models/anomaly-detector/releases/${RUN}/model.pkl`;
  const s3isvc = (release: string, annotated = true): RestartState['isvc'] => ({ name: 'anomaly-detector', exists: true, ...(annotated ? { release } : {}), storageUri: uri(release) });
  const gated = (extra: ModelRunStatus = {}): ModelRun => promoting({ artifact: { sha256: SHA, bytes: 1234 }, steps: { promote: { started: 't' } }, ...extra });
  const uploaded = (sha256 = SHA, bytes = 1234): RestartState['s3'] => ({ bucket: 'model-storage', uploaded: { sha256, bytes } });
  const table: Array<{ name: string; state: Omit<RestartState, 'now'>; input: RestartInput; expected: RestartAction[] }> = [
    {
      name: 'uploaded object matches the gated sha256: Verifying, ONE patch of storageUri + annotation, prune keeping the served and previous',
      input: promoteDone(okResult(RUN, null)), state: { run: gated(), isvc: s3isvc('placeholder', false), s3: uploaded() },
      expected: [
        { kind: 'record-promoted', release: RUN, previousRelease: 'placeholder', verifyDeadline: VERIFY_DEADLINE, message: `promoted ${RUN} to s3://model-storage/${key} replacing placeholder; anomaly-detector rolling` },
        { kind: 'patch-isvc', isvc: 'anomaly-detector', release: RUN, storageUri: uri(RUN) },
        { kind: 'prune-releases', bucket: 'model-storage', protect: [RUN, 'placeholder'] },
        { kind: 'reply-restarted', release: RUN, previousRelease: 'placeholder', inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
      ],
    },
    {
      name: 'the previous release is the one storageUri names, not what the volume says',
      input: promoteDone(okResult(RUN, 'something-on-the-pvc')), state: { run: gated(), isvc: s3isvc(PREV), s3: uploaded() },
      expected: [
        { kind: 'record-promoted', release: RUN, previousRelease: PREV, verifyDeadline: VERIFY_DEADLINE, message: `promoted ${RUN} to s3://model-storage/${key} replacing ${PREV}; anomaly-detector rolling` },
        { kind: 'patch-isvc', isvc: 'anomaly-detector', release: RUN, storageUri: uri(RUN) },
        { kind: 'prune-releases', bucket: 'model-storage', protect: [RUN, PREV] },
        { kind: 'reply-restarted', release: RUN, previousRelease: PREV, inferenceService: 'anomaly-detector', restartedAt: NOW.toISOString() },
      ],
    },
    {
      name: 'uploaded object has another sha256: deleted, run failed, nothing patched',
      input: promoteDone(okResult(RUN, null)), state: { run: gated(), isvc: s3isvc(PREV), s3: uploaded('b'.repeat(64)) },
      expected: [
        { kind: 'delete-object', bucket: 'model-storage', key, why: `s3://model-storage/${key} has sha256 ${'b'.repeat(64)} (1234 bytes), not the gated ${SHA} (1234 bytes)` },
        { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: s3://model-storage/${key} has sha256 ${'b'.repeat(64)} (1234 bytes), not the gated ${SHA} (1234 bytes); nothing served changed`, stepMessage: `s3://model-storage/${key} has sha256 ${'b'.repeat(64)} (1234 bytes), not the gated ${SHA} (1234 bytes)` },
        { kind: 'reply-run-failed', step: 'promote', reason: 'upload-mismatch', message: `promotion of ${RUN} failed: s3://model-storage/${key} has sha256 ${'b'.repeat(64)} (1234 bytes), not the gated ${SHA} (1234 bytes); nothing served changed` },
      ],
    },
    {
      name: 'the release file on the volume is not what the gate approved: failed before anything is served',
      input: promoteDone({ ...okResult(RUN, null), sha256: 'c'.repeat(64) }), state: { run: gated(), isvc: s3isvc(PREV), s3: uploaded() },
      expected: [
        { kind: 'delete-object', bucket: 'model-storage', key, why: `the released file's sha256 ${'c'.repeat(64)} is not the gated ${SHA}` },
        { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: the released file's sha256 ${'c'.repeat(64)} is not the gated ${SHA}; nothing served changed`, stepMessage: `the released file's sha256 ${'c'.repeat(64)} is not the gated ${SHA}` },
        { kind: 'reply-run-failed', step: 'promote', reason: 'upload-mismatch', message: `promotion of ${RUN} failed: the released file's sha256 ${'c'.repeat(64)} is not the gated ${SHA}; nothing served changed` },
      ],
    },
    {
      name: 'object missing after a Job that said ok: run failed, nothing to delete',
      input: promoteDone(okResult(RUN, null)), state: { run: gated(), isvc: s3isvc(PREV), s3: { bucket: 'model-storage', uploaded: { missing: true } } },
      expected: [
        { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: s3://model-storage/${key} is missing after the upload; nothing served changed`, stepMessage: `s3://model-storage/${key} is missing after the upload` },
        { kind: 'reply-run-failed', step: 'promote', reason: 'upload-mismatch', message: `promotion of ${RUN} failed: s3://model-storage/${key} is missing after the upload; nothing served changed` },
      ],
    },
    {
      name: 'upload refused (read-only bucket): the Job reports ok: false, the run fails, nothing patched',
      input: promoteDone({ ok: false, release: RUN, error: 'upload to the bucket refused: HTTP 403' }), state: { run: gated(), isvc: s3isvc(PREV), s3: { bucket: 'model-storage' } },
      expected: [
        { kind: 'finish-failed', step: 'promote', message: `promotion of ${RUN} failed: upload to the bucket refused: HTTP 403`, stepMessage: 'upload to the bucket refused: HTTP 403' },
        { kind: 'reply-run-failed', step: 'promote', reason: 'promote-failed', message: `promotion of ${RUN} failed: upload to the bucket refused: HTTP 403` },
      ],
    },
    {
      name: 'verification failed: no rollback Job; record the restore, then storageUri back to the previous release',
      input: { kind: 'deployment-failed', run: RUN }, state: { run: verifying(), isvc: s3isvc(RUN), s3: { bucket: 'model-storage' } },
      expected: [
        { kind: 'record-restoring', release: PREV, message: `restoring ${PREV} from s3://model-storage; anomaly-detector rolling back` },
        { kind: 'patch-isvc', isvc: 'anomaly-detector', release: PREV, storageUri: uri(PREV) },
      ],
    },
    {
      name: 'a restore stopped before its patch is finished by the next delivery (storageUri too)',
      input: { kind: 'deployment-failed', run: RUN },
      state: { run: verifying({ rollback: { release: PREV, startedAt: 't' }, steps: { rollback: { started: 't', finished: 't', outcome: 'restored' } } }), isvc: s3isvc(RUN), s3: { bucket: 'model-storage' } },
      expected: [{ kind: 'patch-isvc', isvc: 'anomaly-detector', release: PREV, storageUri: uri(PREV) }],
    },
    {
      name: 'a restore whose storageUri already names the previous release waits for verify-endpoint',
      input: { kind: 'deployment-failed', run: RUN },
      state: { run: verifying({ rollback: { release: PREV, startedAt: 't' }, steps: { rollback: { started: 't', finished: 't', outcome: 'restored' } } }), isvc: s3isvc(PREV), s3: { bucket: 'model-storage' } },
      expected: [{ kind: 'ignore', reason: `restoring ${PREV}: verify-endpoint checks its new pods` }],
    },
  ];
  test.each(table)('$name', ({ state, input, expected }) => {
    expect(decideRestart(input, { ...state, now: NOW }, s3Model)).toEqual(expected);
  });
});
