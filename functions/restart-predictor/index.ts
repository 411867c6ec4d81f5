import type { CloudEvent } from 'cloudevents';
import { EventTypes, isApiServerEventType, parseEvent } from '../../events/index.ts';
import { findModel, type CatalogModel } from '../../runtime/catalog.ts';
import { invalid, permanent, retryable } from '../../runtime/errors.ts';
import { stepJobOutcome, stepJobOutcomeByName, type StepJobOutcome } from '../../runtime/jobs.ts';
import { isReconcile, reconcileRun } from '../../runtime/reconcile.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Annotations, jobNameFor } from '../../runtime/labels.ts';
import { getRun, releaseOfRun } from '../../runtime/modelrun.ts';
import { assertRecordAgrees, assertSender, type GuardedData } from '../../runtime/senders.ts';
import { Resources, type InferenceService } from '../../runtime/resources.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideRestart, type RestartInput, type RestartState } from './decide.ts';
import { STEP, runRestartEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';
import { readControls } from '../../runtime/controls.ts';
import { createHash } from 'node:crypto';
import { modelBucket, releaseKey, type ModelBucket } from '../../runtime/s3-releases.ts';
import { PromoteResult } from './decide.ts';

// restart-predictor: model.approved → promote Job; its end → roll the predictor (predictor.restarted);
// deployment.failed → rollback Job (or an explicit "nothing to roll back to"); its end → deployment.rolledback.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const event = input.event;

    let restart: RestartInput;
    let modelName: string | undefined;
    let claimed: { type: typeof EventTypes.modelApproved | typeof EventTypes.deploymentFailed; data: GuardedData } | undefined;
    if (event.type === EventTypes.modelApproved || event.type === EventTypes.deploymentFailed) {
      const parsed = parseEvent(event);
      if (!parsed.ok) throw invalid(parsed.reason);
      if (parsed.type !== EventTypes.modelApproved && parsed.type !== EventTypes.deploymentFailed) return empty;
      assertSender(event);
      claimed = { type: parsed.type, data: parsed.data };
      modelName = parsed.data.model;
      restart = { kind: parsed.type === EventTypes.modelApproved ? 'approved' : 'deployment-failed', run: parsed.data.run };
    } else if (isApiServerEventType(event.type)) {
      const job = await finishedJobOf(event, deps);
      if (!job) return empty;
      modelName = job.model;
      restart = job.input;
    } else if (isReconcile(event)) {
      const target = reconcileRun(event, STEP);
      if (!target) return empty;
      const woken = await reconcileInput(target.run, deps);
      if (!woken) return empty;
      restart = woken;
      modelName = target.model;
    } else {
      return empty;
    }

    const run = await getRun(deps.kube, restart.run);
    // A promotion or a rollback happens only when the run's gate / verify record says so (docs/security.md).
    if (claimed && run) assertRecordAgrees(claimed.type, claimed.data, run);
    const model = findModel(deps.catalog, run?.spec.model ?? modelName);
    if (!model) throw permanent(`model ${modelName} is not in the catalog`);
    // The predictor's release matters to a finished Job and to a run that may be Verifying (resuming a restart).
    const manualStart = run?.spec.trigger === 'manual-rollback' && (run.status?.phase ?? 'Pending') === 'Pending';
    const readIsvc = restart.kind === 'job-finished' || run?.status?.phase === 'Verifying' || manualStart;
    const state: RestartState = { isvc: readIsvc ? await isvcState(deps, model) : { name: model.inferenceService, exists: true }, now: deps.clock.now() };
    if (run) state.run = run;
    if (manualStart && run.spec.rollback) state.target = await getRun(deps.kube, run.spec.rollback.release);
    if (restart.kind === 'approved' && run?.status?.phase === 'Promoting' && !run.status.steps?.promote?.started) state.controls = await readControls(deps.kube, model.name);
    // A bucket model (docs/storage.md "Promotion into the bucket"): the S3 port from the storage Secret, opened once.
    let bucket: Promise<ModelBucket> | undefined;
    const s3 = model.storage.kind === 's3' ? (): Promise<ModelBucket> => (bucket ??= modelBucket(deps.kube, model, deps.settings.s3CaBundlePath)) : undefined;
    try {
      if (s3 && run) state.s3 = await bucketState(restart, run, await s3(), model);
      const actions = decideRestart(restart, state, model);
      const out = await runRestartEffects(actions, { deps, model, runName: restart.run, ...traceOf(event, run), ...(s3 ? { s3 } : {}) });
      return out ? reply(out) : empty;
    } finally {
      if (bucket) (await bucket.catch(() => undefined))?.port.close();
    }
  },
};

/**
 * What the watchdog's reconcile asks of us, read from the cluster (docs/run-lifecycle.md): conclude a finished
 * promote/rollback Job; else start the promotion (Promoting) or finish a restart stopped before the patch
 * (approved, decide resumes it); or roll back a failed verification that has no rollback yet (deployment-failed:
 * decide checks the verify record).
 */
async function reconcileInput(runName: string, deps: StepDeps): Promise<RestartInput | undefined> {
  const run = await getRun(deps.kube, runName);
  if (!run) return undefined;
  const status = run.status ?? {};
  const jobStep = status.steps?.rollback?.started ? 'rollback' : 'promote';
  if (status.steps?.[jobStep]?.started && !status.steps[jobStep].finished) {
    const found = await stepJobOutcomeByName(deps.kube, jobNameFor(runName, jobStep), [jobStep]);
    if (!found || found.kind === 'ignore') return undefined;
    return jobInput(found);
  }
  const verify = status.steps?.verify;
  if (status.phase === 'Verifying' && verify?.finished && verify.outcome !== 'verified') return { kind: 'deployment-failed', run: runName };
  return { kind: 'approved', run: runName };
}

function jobInput(found: Extract<StepJobOutcome, { kind: 'finished' }>): RestartInput {
  const e = found.evidence;
  const problem = e.failure?.startsWith('FailedCreate: ') ? `${e.problem ?? 'the Job could not start'}: ${e.failure}` : e.problem;
  return {
    kind: 'job-finished', run: found.run, job: found.step === 'rollback' ? 'rollback' : 'promote', succeeded: e.succeeded,
    ...(e.result !== undefined ? { result: e.result } : {}),
    ...(problem ? { problem } : {}),
  };
}

/** A finished promote/rollback Job of ours (with its result read from its pod), else undefined (ignored). */
async function finishedJobOf(event: CloudEvent<unknown>, deps: StepDeps): Promise<{ model: string; input: RestartInput } | undefined> {
  // A Job that cannot create its pod counts as finished (failed) with the controller's FailedCreate reason.
  const found = await stepJobOutcome(deps.kube, event, ['promote', 'rollback']);
  if (found.kind === 'ignore' || !found.model) return undefined;
  return { model: found.model, input: jobInput(found) };
}

/**
 * What decide needs of the bucket: its name, and after a promote Job that reported success, the release object as
 * it is now (sha256 and size read back; an S3 error is retryable, 503).
 */
async function bucketState(restart: RestartInput, run: NonNullable<RestartState['run']>, b: ModelBucket, model: CatalogModel): Promise<NonNullable<RestartState['s3']>> {
  if (restart.kind !== 'job-finished' || restart.job !== 'promote' || !PromoteResult.safeParse(restart.result).data?.ok) return { bucket: b.bucket };
  if (run.status?.steps?.promote?.finished) return { bucket: b.bucket };
  // The run's own release (decide checks the Job reported the same one).
  const release = releaseOfRun(run);
  let body: Buffer | undefined;
  try {
    body = await b.port.get(b.bucket, releaseKey(model, release));
  } catch (err) {
    throw retryable(`reading back the uploaded release of ${model.name}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!body) return { bucket: b.bucket, uploaded: { missing: true } };
  return { bucket: b.bucket, uploaded: { sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length } };
}

async function isvcState(deps: StepDeps, model: CatalogModel): Promise<RestartState['isvc']> {
  const isvc = await deps.kube.get<InferenceService & KubeObject>(Resources.inferenceService, model.inferenceService);
  if (!isvc) return { name: model.inferenceService, exists: false };
  const release = isvc.spec?.predictor?.annotations?.[Annotations.modelRelease];
  const storageUri = (isvc.spec?.predictor as { model?: { storageUri?: string } } | undefined)?.model?.storageUri;
  return { name: model.inferenceService, exists: true, ...(release ? { release } : {}), ...(storageUri ? { storageUri } : {}) };
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
