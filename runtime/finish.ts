import { EventTypes, buildEvent, type TrainingRequested } from '../events/index.ts';
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
