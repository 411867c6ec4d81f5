import { z } from 'zod';
import { MESSAGE_MAX, clip } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { jobNameFor } from '../../runtime/labels.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { releaseOfRun } from '../../runtime/modelrun.ts';
import { pinnedText, type ModelControls } from '../../runtime/controls.ts';
import { releaseKey, releaseOfStorageUri, releaseStorageUri } from '../../runtime/s3-releases.ts';

// Pure decisions for restart-predictor: what an approval, a failed deployment or the end of our promote /
// rollback Job means for the run, as the exact list of effects. No I/O, no clock: `now` is an input.

/** promote.py's result JSON (config/jobs/promote.py docstring); unknown keys kept, missing evidence fails. */
export const PromoteResult = z.looseObject({
  ok: z.boolean(),
  release: z.string().optional(),
  previousRelease: z.string().nullable().optional(),
  sha256: z.string().nullable().optional(),
  bytes: z.number().nullable().optional(),
  servedPath: z.string().optional(),
  error: z.string().optional(),
});
export type PromoteResult = z.infer<typeof PromoteResult>;

export type JobKind = 'promote' | 'rollback';

export type RestartInput =
  | { kind: 'approved'; run: string }
  | { kind: 'deployment-failed'; run: string }
  | { kind: 'job-finished'; run: string; job: JobKind; succeeded: boolean; result?: unknown; problem?: string };

export interface RestartState {
  /** The ModelRun named by the input, if it exists. */
  run?: ModelRun;
  /** The catalog InferenceService and its current release annotation; `exists: false` when it is absent. */
  isvc: { name: string; exists: boolean; release?: string; storageUri?: string };
  /**
   * A model served from a bucket (catalog `storage.kind: s3`, docs/storage.md): its bucket and, once the promote
   * Job finished, the uploaded release object as read back from the bucket (sha256 and size), or missing.
   */
  s3?: { bucket: string; uploaded?: { sha256: string; bytes: number } | { missing: true } };
  /** The model's day-2 controls (docs/day2.md): a pinned release stops a promotion before its Job exists. */
  controls?: ModelControls;
  /** A manual rollback's target: the run that trained the release it serves again (absent when pruned or never ours). */
  target?: ModelRun;
  now: Date;
}

export type RestartAction =
  | { kind: 'ignore'; reason: string }
  | { kind: 'create-job'; job: JobKind; name: string; release: string; source: 'staging' | 'release' }
  | { kind: 'record-job-started'; job: JobKind; name: string }
  /** One merge patch: the release annotation and, for a bucket model, `spec.predictor.model.storageUri` with it. */
  | { kind: 'patch-isvc'; isvc: string; release: string; storageUri?: string }
  /** A bucket model: remove an uploaded object that failed its check (nothing served names it). */
  | { kind: 'delete-object'; bucket: string; key: string; why: string }
  /** A bucket model: delete releases beyond the catalog's releasesKept, never one of `protect`. */
  | { kind: 'prune-releases'; bucket: string; protect: string[] }
  | { kind: 'record-promoted'; release: string; previousRelease: string | null; verifyDeadline: string; message: string }
  | { kind: 'finish-failed'; step: JobKind; message: string; stepMessage: string }
  /** Record `status.rollback` (restoring `release`, runtime/rollback.ts) before the InferenceService is patched back. */
  | { kind: 'record-restoring'; release: string; message: string }
  | { kind: 'finish-not-rolled-back'; message: string }
  | { kind: 'finish-pinned'; release: string; by: string; message: string }
  | { kind: 'start-manual-rollback'; release: string; evidence: Pick<ModelRunStatus, 'gate' | 'probe' | 'artifact'>; message: string }
  | { kind: 'finish-pending-failed'; message: string }
  | { kind: 'reply-restarted'; release: string; previousRelease: string | null; inferenceService: string; restartedAt: string }
  | { kind: 'reply-rolledback'; failedRelease: string; restoredRelease: string | null; message: string }
  | { kind: 'reply-run-failed'; step: JobKind; reason: string; message: string };

export const noPreviousMessage = (run: string): string => `no previous release to roll back to; ${run} is still served`;

/** The patch rolling the predictor to `release`; a bucket model's storageUri names the release folder too. */
function patchTo(state: RestartState, model: CatalogModel, release: string): RestartAction & { kind: 'patch-isvc' } {
  return { kind: 'patch-isvc', isvc: state.isvc.name, release, ...(state.s3 ? { storageUri: releaseStorageUri(model, state.s3.bucket, release) } : {}) };
}

/** What the predictor serves now: its release annotation, or (bucket model) the release its storageUri names. */
function servedRelease(state: RestartState, model: CatalogModel): string | undefined {
  return (state.s3 ? releaseOfStorageUri(model, state.isvc.storageUri) : undefined) ?? state.isvc.release;
}

export function decideRestart(input: RestartInput, state: RestartState, model: CatalogModel): RestartAction[] {
  const run = state.run;
  if (!run) return [{ kind: 'ignore', reason: `no ModelRun ${input.run}` }];
  const restore = resumeRestore(run, state, model);
  if (restore) return restore;
  switch (input.kind) {
    case 'approved': return resumeRestart(input.run, run, state, model) ?? onApproved(input.run, run, state);
    case 'deployment-failed': return onDeploymentFailed(input.run, run, state, model);
    case 'job-finished': return input.job === 'promote' ? onPromoteFinished(input, run, state, model) : onRollbackFinished(input, run, state);
  }
}

/**
 * A manual rollback (docs/day2.md) waiting in Pending: carry the target run's gate record over (verification probes
 * with it), move to Promoting and start the Job that serves the kept release. The CLI checked that the release is
 * kept and approved; this checks again from the cluster (the CLI may be old, the run may have been pruned since).
 */
function onManualRollback(name: string, run: ModelRun, state: RestartState): RestartAction[] {
  const release = run.spec.rollback?.release;
  const fail = (message: string): RestartAction[] => [{ kind: 'finish-pending-failed', message: clip(message, MESSAGE_MAX) }];
  if (!release) return fail(`manual rollback ${name} names no release`);
  if (!state.isvc.exists) return fail(`InferenceService ${state.isvc.name} not found: nothing to roll back`);
  if (state.isvc.release === release) return fail(`release ${release} is already served by ${state.isvc.name}: nothing to roll back`);
  const target = state.target;
  const forced = run.spec.rollback?.force === true;
  const approved = target?.spec.model === run.spec.model && target.status?.gate?.verdict === 'approved';
  if (!approved && !forced) return fail(`release ${release} was never approved by the gate (no approved run ${release} of ${run.spec.model}); mlops rollback --force overrides`);
  const job = jobNameFor(name, 'promote');
  const evidence: RestartAction & { kind: 'start-manual-rollback' } = {
    kind: 'start-manual-rollback', release,
    evidence: approved && target.status ? {
      ...(target.status.gate ? { gate: target.status.gate } : {}),
      ...(target.status.probe ? { probe: target.status.probe } : {}),
      ...(target.status.artifact ? { artifact: target.status.artifact } : {}),
    } : {},
    message: `rolling back ${run.spec.model} to ${release}${state.isvc.release ? ` (serving ${state.isvc.release})` : ''} on request of ${run.spec.requestedBy ?? 'someone'}${forced ? ' (forced)' : ''}`,
  };
  return [
    evidence,
    { kind: 'create-job', job: 'promote', name: job, release, source: 'release' },
    { kind: 'record-job-started', job: 'promote', name: job },
  ];
}

function onApproved(name: string, run: ModelRun, state: RestartState): RestartAction[] {
  const status = run.status ?? {};
  const manual = run.spec.trigger === 'manual-rollback';
  if (manual && (status.phase ?? 'Pending') === 'Pending') return onManualRollback(name, run, state);
  const controls = manual ? undefined : state.controls;
  if (status.phase !== 'Promoting') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Promoting` }];
  if (status.steps?.promote?.started) return [{ kind: 'ignore', reason: 'promote Job already started' }];
  // Checked as late as possible, right before the promote Job would exist: a pin set later than this does not stop
  // a promotion already under way (docs/day2.md).
  const pinned = controls?.pinned;
  if (pinned) {
    return [{ kind: 'finish-pinned', release: pinned.release, by: pinned.by, message: clip(`approved but not promoted: ${pinnedText(pinned)} (mlops unpin ${run.spec.model} to promote again)`, MESSAGE_MAX) }];
  }
  const job = jobNameFor(name, 'promote');
  const release = releaseOfRun(run);
  return [
    { kind: 'create-job', job: 'promote', name: job, release, source: manual ? 'release' : 'staging' },
    { kind: 'record-job-started', job: 'promote', name: job },
  ];
}

function onDeploymentFailed(name: string, run: ModelRun, state: RestartState, model: CatalogModel): RestartAction[] {
  const status = run.status ?? {};
  const rollback = status.steps?.rollback;
  if (rollback?.finished) {
    // Redelivery after the outcome. A restored release is verify-endpoint's to conclude (and announce); only the
    // "nothing to roll back to" this step ended itself is answered again (same event id, receivers de-duplicate).
    if (rollback.outcome === 'not-rolled-back') return [{ kind: 'reply-rolledback', failedRelease: releaseOfRun(run), restoredRelease: null, message: noPreviousMessage(releaseOfRun(run)) }];
    return [{ kind: 'ignore', reason: `rollback already ended (${rollback.outcome ?? 'unknown'})` }];
  }
  if (status.phase !== 'Verifying') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Verifying` }];
  if (rollback?.started) return [{ kind: 'ignore', reason: 'rollback Job already started' }];
  const previous = status.release?.replaced;
  const failed = releaseOfRun(run);
  if (!previous || previous === failed) {
    const message = noPreviousMessage(failed);
    return [
      { kind: 'finish-not-rolled-back', message },
      { kind: 'reply-rolledback', failedRelease: failed, restoredRelease: null, message },
    ];
  }
  if (state.s3) {
    // A bucket model's previous release is still in the bucket (pruning never deletes it): no Job, record the
    // restore first, then point storageUri back (resumeRestore finishes a crash in between).
    return [
      { kind: 'record-restoring', release: previous, message: `restoring ${previous} from s3://${state.s3.bucket}; ${state.isvc.name} rolling back` },
      ...(state.isvc.exists && servedRelease(state, model) !== previous ? [patchTo(state, model, previous)] : []),
    ];
  }
  const job = jobNameFor(name, 'rollback');
  return [
    { kind: 'create-job', job: 'rollback', name: job, release: previous, source: 'release' },
    { kind: 'record-job-started', job: 'rollback', name: job },
  ];
}

type JobFinished = Extract<RestartInput, { kind: 'job-finished' }>;

/** Fail closed: a promotion counts only with a succeeded Job AND a parseable `ok: true` result for this release. */
function verdictOf(input: JobFinished, release: string): { ok: true; result: PromoteResult } | { ok: false; why: string } {
  if (input.problem) return { ok: false, why: input.problem };
  const parsed = PromoteResult.safeParse(input.result);
  if (!parsed.success) return { ok: false, why: 'the Job result is not promote.py JSON' };
  const result = parsed.data;
  if (!result.ok) return { ok: false, why: result.error ?? 'promote.py reported ok: false' };
  if (!input.succeeded) return { ok: false, why: 'the Job failed' };
  if (result.release !== release) return { ok: false, why: `the Job served release ${result.release ?? '(none)'}, expected ${release}` };
  return { ok: true, result };
}

/**
 * Verifying is recorded BEFORE the InferenceService is patched (a crash in between must not leave a served release
 * unrecorded). So a run in Verifying whose predictor does not carry its release yet, with no verdict and no
 * rollback, was stopped between the two: any delivery about it (the promote Job, the approval, the reconcile's
 * re-send) finishes the restart.
 */
function resumeRestart(name: string, run: ModelRun, state: RestartState, model: CatalogModel): RestartAction[] | undefined {
  const status = run.status ?? {};
  const release = releaseOfRun(run);
  if (status.phase !== 'Verifying' || status.release?.promoted === undefined || status.release.promoted !== release) return undefined;
  if (release !== name && run.spec.trigger !== 'manual-rollback') return undefined;
  if (status.steps?.verify?.finished || status.steps?.rollback?.started || !state.isvc.exists || servedRelease(state, model) === release) return undefined;
  return [
    patchTo(state, model, release),
    { kind: 'reply-restarted', release, previousRelease: status.release.replaced ?? null, inferenceService: state.isvc.name, restartedAt: state.now.toISOString() },
  ];
}

function onPromoteFinished(input: JobFinished, run: ModelRun, state: RestartState, model: CatalogModel): RestartAction[] {
  const status = run.status ?? {};
  const resumed = resumeRestart(input.run, run, state, model);
  if (resumed) return resumed;
  if (status.steps?.promote?.finished) return [{ kind: 'ignore', reason: 'promote already finished' }];
  if (status.phase !== 'Promoting') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Promoting` }];
  // A trained run promotes its own release; a manual rollback serves the kept release it names (docs/day2.md).
  const release = releaseOfRun(run);
  const verdict = verdictOf(input, release);
  if (!verdict.ok) {
    const message = clip(`promotion of ${release}${release === input.run ? '' : ` (manual rollback ${input.run})`} failed: ${verdict.why}`, MESSAGE_MAX);
    return [
      { kind: 'finish-failed', step: 'promote', message, stepMessage: verdict.why },
      { kind: 'reply-run-failed', step: 'promote', reason: 'promote-failed', message },
    ];
  }
  if (!state.isvc.exists) {
    const message = `InferenceService ${state.isvc.name} not found: ${release} was promoted on the volume but no predictor was restarted`;
    return [
      { kind: 'finish-failed', step: 'promote', message, stepMessage: message },
      { kind: 'reply-run-failed', step: 'promote', reason: 'inferenceservice-missing', message },
    ];
  }
  if (state.s3) return onUploaded(release, input, run, state, state.s3, model, verdict.result);
  const previousRelease = verdict.result.previousRelease ?? null;
  const verifyDeadline = new Date(state.now.getTime() + model.deadlines.verifyMinutes * 60_000).toISOString();
  // Record first (Verifying), then roll the predictor: see resumeRestart.
  return [
    { kind: 'record-promoted', release, previousRelease, verifyDeadline, message: `${release === input.run ? 'promoted' : 'rolled back on request to'} ${release}${previousRelease ? ` replacing ${previousRelease}` : ''}; ${state.isvc.name} rolling` },
    ...(state.isvc.release === release ? [] : [{ kind: 'patch-isvc', isvc: state.isvc.name, release } as const]),
    { kind: 'reply-restarted', release, previousRelease, inferenceService: state.isvc.name, restartedAt: state.now.toISOString() },
  ];
}

/**
 * A bucket model's promote Job PUT the release to `<prefix>/<model>/releases/<release>/model.pkl`. It counts only
 * when the object read back has the sha256 and size the gate recorded (and the Job reported): else the object is
 * deleted and the run fails, with nothing served changed. The previous release is the one storageUri names now.
 */
function onUploaded(release: string, input: JobFinished, run: ModelRun, state: RestartState, s3: NonNullable<RestartState['s3']>, model: CatalogModel, result: PromoteResult): RestartAction[] {
  const key = releaseKey(model, release);
  const expected = run.status?.artifact?.sha256 ?? result.sha256 ?? undefined;
  const uploaded = s3.uploaded;
  let why: string | undefined;
  if (!expected) why = 'no sha256 recorded for the artifact';
  else if (result.sha256 !== expected) why = `the released file's sha256 ${result.sha256 ?? '(none)'} is not the gated ${expected}`;
  else if (!uploaded || 'missing' in uploaded) why = `s3://${s3.bucket}/${key} is missing after the upload`;
  else if (uploaded.sha256 !== expected || (typeof result.bytes === 'number' && uploaded.bytes !== result.bytes)) why = `s3://${s3.bucket}/${key} has sha256 ${uploaded.sha256} (${uploaded.bytes} bytes), not the gated ${expected}${typeof result.bytes === 'number' ? ` (${result.bytes} bytes)` : ''}`;
  if (why) {
    const message = clip(`promotion of ${release}${release === input.run ? '' : ` (manual rollback ${input.run})`} failed: ${why}; nothing served changed`, MESSAGE_MAX);
    return [
      ...(uploaded && !('missing' in uploaded) ? [{ kind: 'delete-object', bucket: s3.bucket, key, why } as const] : []),
      { kind: 'finish-failed', step: 'promote', message, stepMessage: why },
      { kind: 'reply-run-failed', step: 'promote', reason: 'upload-mismatch', message },
    ];
  }
  const served = servedRelease(state, model);
  const previousRelease = served && served !== release ? served : null;
  const verifyDeadline = new Date(state.now.getTime() + model.deadlines.verifyMinutes * 60_000).toISOString();
  return [
    { kind: 'record-promoted', release, previousRelease, verifyDeadline, message: `${release === input.run ? 'promoted' : 'rolled back on request to'} ${release} to s3://${s3.bucket}/${key}${previousRelease ? ` replacing ${previousRelease}` : ''}; ${state.isvc.name} rolling` },
    ...(served === release ? [] : [patchTo(state, model, release)]),
    { kind: 'prune-releases', bucket: s3.bucket, protect: [release, ...(previousRelease ? [previousRelease] : [])] },
    { kind: 'reply-restarted', release, previousRelease, inferenceService: state.isvc.name, restartedAt: state.now.toISOString() },
  ];
}

function onRollbackFinished(input: JobFinished, run: ModelRun, state: RestartState): RestartAction[] {
  const status = run.status ?? {};
  if (status.steps?.rollback?.finished) return [{ kind: 'ignore', reason: 'rollback already finished' }];
  if (status.phase !== 'Verifying') return [{ kind: 'ignore', reason: `run is ${status.phase ?? 'without a phase'}, not Verifying` }];
  const previous = status.release?.replaced;
  if (!previous) return [{ kind: 'ignore', reason: 'run records no replaced release' }];
  const verdict = verdictOf(input, previous);
  if (!verdict.ok) {
    const message = clip(`rollback to ${previous} failed: ${verdict.why}; ${releaseOfRun(run)} is still served`, MESSAGE_MAX);
    return [
      { kind: 'finish-failed', step: 'rollback', message, stepMessage: verdict.why },
      { kind: 'reply-run-failed', step: 'rollback', reason: 'rollback-failed', message },
    ];
  }
  // Record first (status.rollback), then roll the predictor back; verify-endpoint then proves the restored release
  // on the rollout's new pods and ends the run RolledBack, or Failed when it does not answer (runtime/rollback.ts).
  return [
    { kind: 'record-restoring', release: previous, message: `restored ${previous} on the volume; ${state.isvc.name} rolling back` },
    ...(state.isvc.exists && state.isvc.release !== previous ? [{ kind: 'patch-isvc', isvc: state.isvc.name, release: previous } as const] : []),
  ];
}

/**
 * status.rollback is recorded BEFORE the InferenceService is patched back: a run restoring R whose predictor does not
 * carry R yet (no verdict on R) was stopped between the two, and any delivery about it finishes the restore.
 */
function resumeRestore(run: ModelRun, state: RestartState, model: CatalogModel): RestartAction[] | undefined {
  const rb = run.status?.rollback;
  if (run.status?.phase !== 'Verifying' || !rb || rb.verified !== undefined) return undefined;
  if (!state.isvc.exists || servedRelease(state, model) === rb.release) return [{ kind: 'ignore', reason: `restoring ${rb.release}: verify-endpoint checks its new pods` }];
  return [patchTo(state, model, rb.release)];
}
