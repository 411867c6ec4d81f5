import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent, clip, type RunStep, type TrainingRequested } from '../events/index.ts';
import type { ForbiddenError } from './errors.ts';
import { releaseLock } from './lock.ts';
import type { ModelRun, ModelRunPhase, ModelRunStatus, TerminalPhase } from './resources.ts';
import { isTerminalPhase } from './resources.ts';
import { phaseOf, transition } from './runstate.ts';
import type { StepDeps } from './step.ts';
import type { StepName } from '../functions/registry.ts';

// Ending a run is the same wherever it happens (training failed, gate rejected, verified, rolled back,
// deadline): the terminal phase written once through the state machine (docs/run-lifecycle.md), then the lock
// freed — a parked request is sent on BEFORE the Lease that holds it is deleted, so a crash in between costs a
// duplicate (same event id), never the request.

export interface FinishOptions {
  /** The phase the caller decided from: the write happens only while the run is still in it. */
  from: ModelRunPhase;
  phase: TerminalPhase;
  message: string;
  /** Extra status fields written in the same compare-and-swap (step records, release ...). */
  patch?: (status: ModelRunStatus) => ModelRunStatus;
  step: string;
  traceparent?: string;
}

/**
 * End the run. Returns the run as stored afterwards (ended by this call, or already ended / moved on by someone
 * else: the caller compares), or undefined when it does not exist. The lock is freed whenever the run is terminal,
 * also on a redelivery after a crash between the status write and the release.
 */
export async function finishRun(deps: StepDeps, runName: string, opts: FinishOptions): Promise<ModelRun | undefined> {
  const now = deps.clock.now().toISOString();
  const result = await transition(deps.kube, runName, {
    from: opts.from,
    to: opts.phase,
    now,
    patch: (status) => ({ ...(opts.patch ? opts.patch(status) : status), message: opts.message }),
  });
  if (result.kind === 'gone') return undefined;
  const run = result.run;
  if (isTerminalPhase(run.status?.phase)) await freeLock(deps, run, opts);
  return run;
}

/** Free the model's lock held by `run`, sending its parked request first (idempotent; safe to repeat). */
export async function freeLock(deps: StepDeps, run: ModelRun, opts: { step: string; traceparent?: string }): Promise<void> {
  const runName = run.metadata.name ?? '';
  await releaseLock(deps.kube, run.spec.model, runName, (queued) => resubmitQueued(deps, queued, runName, opts));
}

export async function resubmitQueued(deps: StepDeps, queued: TrainingRequested, freedBy: string, opts: { step: string; traceparent?: string }): Promise<void> {
  const data: TrainingRequested = { ...queued, provenance: { ...queued.provenance, queuedFrom: freedBy } };
  const event = buildEvent(EventTypes.trainingRequested, {
    step: opts.step,
    model: data.model,
    data,
    // Deterministic: a resend after a crash is the same event, de-duplicated by receivers.
    id: `${freedBy}.queued.training.requested`,
    ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
  });
  await deps.sink.send(event);
  deps.logger.info({ model: data.model, freedBy }, 'queued request re-submitted');
}

/**
 * A step could not create what the run needs because the API answered 403 (a Role without a permission the
 * request or an admission plugin needs): a configuration fault, so the run fails at once naming the missing
 * permission instead of retrying to its deadline. The ModelRun keeps the whole request (its spec) for a new
 * request once the Role is fixed (docs/openshift.md).
 */
export async function failRunForbidden(
  deps: StepDeps,
  run: ModelRun,
  step: RunStep,
  err: ForbiddenError,
  opts: { what: string; traceparent?: string },
): Promise<CloudEvent<unknown> | undefined> {
  const name = run.metadata.name ?? '';
  const message = clip(`cannot ${opts.what}: the Role lacks ${err.missing} (${err.message})`, 1000, { oneLine: true });
  deps.logger.error({ run: name, step, missing: err.missing }, 'forbidden: the run fails');
  const now = deps.clock.now().toISOString();
  const finished = await finishRun(deps, name, {
    from: phaseOf(run), phase: 'Failed', step: stepNameOf(step), message,
    // The step's record says why (a Verifying run may end Failed only with its rollback settled: docs/run-lifecycle.md).
    patch: (status) => (step === 'watchdog' ? status : { ...status, step, steps: { ...status.steps, [step]: { ...status.steps?.[step], finished: now, outcome: 'forbidden', message } } }),
    ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
  });
  // Another delivery may have ended the run first with another verdict: then say nothing here.
  if (finished?.status?.message !== message) return undefined;
  return buildEvent(EventTypes.runFailed, {
    step: stepNameOf(step),
    data: { model: run.spec.model, run: name, step, reason: 'forbidden', message },
    ...(run.spec.profile ? { profile: run.spec.profile } : {}),
    ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
  });
}

const STEP_FUNCTIONS: Record<RunStep, StepName> = {
  training: 'start-training', copy: 'copy-gpu-model', gate: 'gate-health', promote: 'restart-predictor',
  verify: 'verify-endpoint', rollback: 'restart-predictor', watchdog: 'watchdog',
};
const stepNameOf = (step: RunStep): string => STEP_FUNCTIONS[step];

