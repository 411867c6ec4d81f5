import { ApiServerEventTypes, EventTypes, parseApiServerSource, parseEvent } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { readJobResult } from '../../runtime/jobs.ts';
import { Labels, MANAGER, jobNameFor } from '../../runtime/labels.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Job, jobOutcome } from '../../runtime/resources.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideCopy, type CopyEvidence, type CopyInput } from './decide.ts';
import { STEP, runCopyEffects } from './effects.ts';

// copy-gpu-model: `training.succeeded` of a GPU run → the `<run>-copy` Job; that Job's end (ApiServerSource update,
// route `copy`) → `model.copied` (run moves to Gating) or `run.failed` (run ends Failed), once per run.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const ce = input.event;
    let copyInput: CopyInput;

    if (ce.type === EventTypes.trainingSucceeded) {
      const parsed = parseEvent(ce);
      if (!parsed.ok) throw invalid(parsed.reason);
      if (parsed.type !== EventTypes.trainingSucceeded) return empty;
      if (parsed.data.profile !== 'gpu') return empty; // CPU runs are gated in place: no API call
      copyInput = { kind: 'trigger', run: parsed.data.run, profile: parsed.data.profile };
    } else if (ce.type === ApiServerEventTypes.update || ce.type === ApiServerEventTypes.add) {
      const job = parseCopyJob(ce);
      if (job.kind === 'ignore') {
        deps.logger.debug({ reason: job.reason }, 'ignored');
        return empty;
      }
      copyInput = { kind: 'job-finished', run: job.run, evidence: await readEvidence(deps, job.job) };
    } else {
      return empty;
    }

    const run = await getRun(deps.kube, copyInput.run);
    if (!run) {
      deps.logger.info({ run: copyInput.run }, 'no such ModelRun; ignored');
      return empty;
    }
    const model = findModel(deps.catalog, run.spec.model);
    if (!model) throw permanent(`model "${run.spec.model}" of run ${copyInput.run} is not in the catalog`);
    const actions = decideCopy(copyInput, { run, model, now: deps.clock.now() });
    const event = await runCopyEffects(actions, { run, model, ...traceOf(ce, run) }, deps);
    return event ? reply(event) : empty;
  },
};

type ParsedJob = { kind: 'ignore'; reason: string } | { kind: 'finished'; run: string; job: Job };

/** An ApiServerSource Job event → our finished copy Job, or why it is not one (no API call for running Jobs). */
function parseCopyJob(ce: unknown): ParsedJob {
  const parsed = parseApiServerSource(ce);
  if (!parsed.ok) throw invalid(parsed.reason);
  if (parsed.value.mode !== 'resource') return { kind: 'ignore', reason: 'ref-mode event' };
  const object = parsed.value.object;
  if (object.kind !== 'Job') return { kind: 'ignore', reason: `a ${object.kind}, not a Job` };
  const job = Job.safeParse(object);
  if (!job.success) throw invalid(`Job: ${job.error.issues[0]?.message ?? 'invalid'}`);
  const labels = job.data.metadata.labels ?? {};
  const run = labels[Labels.run];
  if (labels[Labels.managedBy] !== MANAGER || labels[Labels.step] !== 'copy' || !run) return { kind: 'ignore', reason: 'not a copy Job of ours' };
  if (job.data.metadata.name !== jobNameFor(run, 'copy')) return { kind: 'ignore', reason: `Job ${job.data.metadata.name ?? ''} is not named after run ${run}` };
  if (jobOutcome(job.data) === 'running') return { kind: 'ignore', reason: 'copy Job still running' };
  return { kind: 'finished', run, job: job.data };
}

async function readEvidence(deps: StepDeps, job: Job): Promise<CopyEvidence> {
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
