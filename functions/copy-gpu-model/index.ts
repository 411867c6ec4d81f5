import { ApiServerEventTypes, EventTypes, parseEvent } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { finishedStepJob, jobEvidence } from '../../runtime/jobs.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideCopy, type CopyInput } from './decide.ts';
import { STEP, runCopyEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

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
      const job = finishedStepJob(ce, ['copy']);
      if (job.kind === 'ignore') {
        deps.logger.debug({ reason: job.reason }, 'ignored');
        return empty;
      }
      copyInput = { kind: 'job-finished', run: job.run, evidence: await jobEvidence(deps.kube, job.job) };
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

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
