import { ApiServerEventTypes, EventTypes, parseEvent } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { finishedStepJob, jobEvidence } from '../../runtime/jobs.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideGate, type GateInput } from './decide.ts';
import { STEP, readServedRelease, runGateEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

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
      const job = finishedStepJob(ce, ['gate']);
      if (job.kind === 'ignore') {
        deps.logger.debug({ reason: job.reason }, 'ignored');
        return empty;
      }
      gateInput = { kind: 'job-finished', run: job.run, evidence: await jobEvidence(deps.kube, job.job) };
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

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
