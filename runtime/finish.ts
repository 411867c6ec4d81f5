import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent, type RunStep, type TrainingRequested } from '../events/index.ts';
import type { ForbiddenError } from './errors.ts';
import { releaseLock } from './lock.ts';
import { metrics } from './metrics.ts';
import { updateRunStatus } from './modelrun.ts';
import type { ModelRun, ModelRunStatus, TerminalPhase } from './resources.ts';
import { isTerminalPhase } from './resources.ts';
import type { StepDeps } from './step.ts';

// Ending a run is the same wherever it happens (training failed, gate rejected, verified, rolled back,
// deadline): terminal phase + finishedAt written once, the lock freed, and a parked request re-submitted.

export interface FinishOptions {
  phase: TerminalPhase;
  message: string;
  /** Extra status fields written in the same compare-and-swap (step records, release ...). */
  patch?: (status: ModelRunStatus) => ModelRunStatus;
  step: string;
  traceparent?: string;
}

export async function finishRun(deps: StepDeps, runName: string, opts: FinishOptions): Promise<ModelRun | undefined> {
  const now = deps.clock.now().toISOString();
  const result = await updateRunStatus(deps.kube, runName, (status) => {
    if (isTerminalPhase(status.phase)) return undefined;
    const next = opts.patch ? opts.patch(status) : status;
    return { ...next, phase: opts.phase, message: opts.message, finishedAt: now };
  });
  const run = result?.run;
  if (!run) return undefined;
  if (result.changed) {
    metrics.runs.inc({ model: run.spec.model, trigger: run.spec.trigger, outcome: opts.phase });
  }
  // Always try to free: a crash after the status write must not leave the lock held.
  const queued = await releaseLock(deps.kube, run.spec.model, runName);
  if (queued) await resubmit(deps, queued, runName, opts);
  return run;
}

async function resubmit(deps: StepDeps, queued: TrainingRequested, freedBy: string, opts: FinishOptions): Promise<void> {
  const data: TrainingRequested = { ...queued, provenance: { ...queued.provenance, queuedFrom: freedBy } };
  const event = buildEvent(EventTypes.trainingRequested, {
    step: opts.step,
    model: data.model,
    data,
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
  const message = clipMessage(`cannot ${opts.what}: the Role lacks ${err.missing} (${err.message})`);
  deps.logger.error({ run: name, step, missing: err.missing }, 'forbidden: the run fails');
  const finished = await finishRun(deps, name, {
    phase: 'Failed', step: stepNameOf(step), message,
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

const STEP_FUNCTIONS: Record<RunStep, string> = {
  training: 'start-training', copy: 'copy-gpu-model', gate: 'gate-health', promote: 'restart-predictor',
  verify: 'verify-endpoint', rollback: 'restart-predictor', watchdog: 'watchdog',
};
const stepNameOf = (step: RunStep): string => STEP_FUNCTIONS[step];

function clipMessage(text: string): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 1000 ? `${flat.slice(0, 997)}...` : flat;
}
