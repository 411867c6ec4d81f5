import { EventTypes, buildEvent, type TrainingRequested } from '../events/index.ts';
import { releaseLock } from './lock.ts';
import { metrics } from './metrics.ts';
import type { ModelRun, ModelRunPhase, ModelRunStatus, TerminalPhase } from './resources.ts';
import { isTerminalPhase } from './resources.ts';
import { transition } from './runstate.ts';
import type { StepDeps } from './step.ts';

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
  if (result.kind === 'moved') {
    metrics.runs.inc({ model: run.spec.model, trigger: run.spec.trigger, outcome: opts.phase });
  }
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
