import { ApiServerEventTypes, EventTypes, parseApiServerSource, parseEvent } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { readJobResult } from '../../runtime/jobs.ts';
import { Labels, MANAGER, jobNameFor } from '../../runtime/labels.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Job, jobOutcome } from '../../runtime/resources.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideGate, type GateInput } from './decide.ts';
import { STEP, readServedRelease, runGateEffects } from './effects.ts';
import type { GateEvidence } from './report.ts';

// gate-health: `training.succeeded` (CPU) or `model.copied` → the `<run>-gate` Job; that Job's end (ApiServerSource
// update, route `gate`) → a fail-closed verdict: `model.approved` or `model.rejected`, once per run.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const ce = input.event;
    let gateInput: GateInput;

    if (ce.type === EventTypes.trainingSucceeded || ce.type === EventTypes.modelCopied) {
      const parsed = parseEvent(ce);
      if (!parsed.ok) throw invalid(parsed.reason);
      if (parsed.type === EventTypes.trainingSucceeded) gateInput = { kind: 'trigger', event: 'training.succeeded', run: parsed.data.run, profile: parsed.data.profile };
      else if (parsed.type === EventTypes.modelCopied) gateInput = { kind: 'trigger', event: 'model.copied', run: parsed.data.run, profile: 'gpu' };
      else return empty;
    } else if (ce.type === ApiServerEventTypes.update || ce.type === ApiServerEventTypes.add) {
      const job = parseGateJob(ce);
      if (job.kind === 'ignore') {
        deps.logger.debug({ reason: job.reason }, 'ignored');
        return empty;
      }
      gateInput = { kind: 'job-finished', run: job.run, evidence: await readEvidence(deps, job.job) };
    } else {
      return empty;
    }

    const run = await getRun(deps.kube, gateInput.run);
    if (!run) {
      deps.logger.info({ run: gateInput.run }, 'no such ModelRun; ignored');
      return empty;
    }
    const model = findModel(deps.catalog, run.spec.model);
    if (!model) throw permanent(`model "${run.spec.model}" of run ${gateInput.run} is not in the catalog`);
    // The served release is only worth a list call when a verdict is about to be made.
    const deciding = gateInput.kind === 'job-finished' && run.status?.phase === 'Gating' && !run.status.steps?.gate?.finished;
    const served = deciding ? await readServedRelease(deps, model.name, gateInput.run) : undefined;
    const actions = decideGate(gateInput, { run, model, mode: deps.settings.mode, now: deps.clock.now(), ...(served ? { served } : {}) });
    const event = await runGateEffects(actions, { run, model, ...traceOf(ce, run) }, deps);
    return event ? reply(event) : empty;
  },
};

type ParsedJob = { kind: 'ignore'; reason: string } | { kind: 'finished'; run: string; job: Job };

/** An ApiServerSource Job event → our finished gate Job, or why it is not one (no API call for running Jobs). */
function parseGateJob(ce: unknown): ParsedJob {
  const parsed = parseApiServerSource(ce);
  if (!parsed.ok) throw invalid(parsed.reason);
  if (parsed.value.mode !== 'resource') return { kind: 'ignore', reason: 'ref-mode event' };
  const object = parsed.value.object;
  if (object.kind !== 'Job') return { kind: 'ignore', reason: `a ${object.kind}, not a Job` };
  const job = Job.safeParse(object);
  if (!job.success) throw invalid(`Job: ${job.error.issues[0]?.message ?? 'invalid'}`);
  const labels = job.data.metadata.labels ?? {};
  const run = labels[Labels.run];
  if (labels[Labels.managedBy] !== MANAGER || labels[Labels.step] !== 'gate' || !run) return { kind: 'ignore', reason: 'not a gate Job of ours' };
  if (job.data.metadata.name !== jobNameFor(run, 'gate')) return { kind: 'ignore', reason: `Job ${job.data.metadata.name ?? ''} is not named after run ${run}` };
  if (jobOutcome(job.data) === 'running') return { kind: 'ignore', reason: 'gate Job still running' };
  return { kind: 'finished', run, job: job.data };
}

async function readEvidence(deps: StepDeps, job: Job): Promise<GateEvidence> {
  const result = await readJobResult(deps.kube, job);
  const name = job.metadata.name ?? '';
  if (result.state === 'running') return { job: name, succeeded: false, problem: 'job still running' };
  const failed = (job.status?.conditions ?? []).find((c) => c.type === 'Failed' && c.status === 'True');
  return {
    job: name,
    succeeded: result.succeeded,
    ...(result.result !== undefined ? { result: result.result } : {}),
    ...(result.problem ? { problem: result.problem } : {}),
    ...(failed ? { failure: [failed.reason, failed.message].filter(Boolean).join(': ') || 'Failed' } : {}),
  };
}
