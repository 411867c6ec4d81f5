import type { CloudEvent } from 'cloudevents';
import { EventTypes, isApiServerEventType, parseEvent } from '../../events/index.ts';
import { findModel, type CatalogModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { finishedStepJob, readJobResult } from '../../runtime/jobs.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Annotations } from '../../runtime/labels.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Resources, type InferenceService } from '../../runtime/resources.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideRestart, type RestartInput, type RestartState } from './decide.ts';
import { STEP, runRestartEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

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
    if (event.type === EventTypes.modelApproved || event.type === EventTypes.deploymentFailed) {
      const parsed = parseEvent(event);
      if (!parsed.ok) throw invalid(parsed.reason);
      if (parsed.type !== EventTypes.modelApproved && parsed.type !== EventTypes.deploymentFailed) return empty;
      modelName = parsed.data.model;
      restart = { kind: parsed.type === EventTypes.modelApproved ? 'approved' : 'deployment-failed', run: parsed.data.run };
    } else if (isApiServerEventType(event.type)) {
      const job = await finishedJobOf(event, deps);
      if (!job) return empty;
      modelName = job.model;
      restart = job.input;
    } else {
      return empty;
    }

    const run = await getRun(deps.kube, restart.run);
    const model = findModel(deps.catalog, run?.spec.model ?? modelName);
    if (!model) throw permanent(`model ${modelName} is not in the catalog`);
    const state: RestartState = { isvc: restart.kind === 'job-finished' ? await isvcState(deps, model) : { name: model.inferenceService, exists: true }, now: deps.clock.now() };
    if (run) state.run = run;
    const actions = decideRestart(restart, state, model);
    const out = await runRestartEffects(actions, { deps, model, runName: restart.run, ...traceOf(event, run) });
    return out ? reply(out) : empty;
  },
};

/** A finished promote/rollback Job of ours (with its result read from its pod), else undefined (ignored). */
async function finishedJobOf(event: CloudEvent<unknown>, deps: StepDeps): Promise<{ model: string; input: RestartInput } | undefined> {
  const found = finishedStepJob(event, ['promote', 'rollback']);
  if (found.kind === 'ignore' || !found.model) return undefined;
  const result = await readJobResult(deps.kube, found.job);
  if (result.state === 'running') return undefined;
  return {
    model: found.model,
    input: {
      kind: 'job-finished', run: found.run, job: found.step === 'rollback' ? 'rollback' : 'promote', succeeded: result.succeeded,
      ...(result.result !== undefined ? { result: result.result } : {}),
      ...(result.problem ? { problem: result.problem } : {}),
    },
  };
}

async function isvcState(deps: StepDeps, model: CatalogModel): Promise<RestartState['isvc']> {
  const isvc = await deps.kube.get<InferenceService & KubeObject>(Resources.inferenceService, model.inferenceService);
  if (!isvc) return { name: model.inferenceService, exists: false };
  const release = isvc.spec?.predictor?.annotations?.[Annotations.modelRelease];
  return { name: model.inferenceService, exists: true, ...(release ? { release } : {}) };
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
