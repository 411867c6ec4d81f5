import { invalid } from '../../runtime/errors.ts';
import { leaseExpired, type LeaseObject } from '../../runtime/lock.ts';
import { Labels, lockNameFor, runNameFor } from '../../runtime/labels.ts';
import { getRun, isRunTerminal, isServingRun } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideStart, type StartState } from './decide.ts';
import { LockRaceLost, STEP, runStartEffects } from './effects.ts';
import { normalise, type Normalised, type StartRequest } from './request.ts';
import { isReconcile, reconcileRun } from '../../runtime/reconcile.ts';
import { findModel } from '../../runtime/catalog.ts';
import type { TrainingRequested } from '../../events/index.ts';
import type { CloudEvent } from 'cloudevents';
import { faasModule } from '../../runtime/faas.ts';
import { readControls } from '../../runtime/controls.ts';

// start-training: training.requested, PingSource ticks and Tekton pipelinerun.successful → one ModelRun + NVJ per
// request identity, under the per-model lock; or an explicit training.skipped.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid('start-training takes CloudEvents');
    const normalised = isReconcile(input.event) ? await pendingRun(input.event, deps) : normalise(input.event, deps.catalog);
    if (normalised.kind === 'ignore') {
      deps.logger.debug({ reason: normalised.reason }, 'ignored');
      return empty;
    }
    const request = normalised.request;
    const runName = runNameFor(request.model.name, request.idempotencyKey);
    // The lock can change between reading and acquiring; decide again on what we then see (bounded).
    for (let attempt = 0; ; attempt++) {
      const state = await readState(request, runName, deps);
      const actions = decideStart(request, state);
      try {
        const event = await runStartEffects(actions, request, deps, request.traceparent);
        return event ? reply(event) : empty;
      } catch (err) {
        if (!(err instanceof LockRaceLost) || attempt >= 2) throw err;
      }
    }
  },
};

/**
 * The watchdog's reconcile about a run still Pending (a delivery stopped after creating the ModelRun, before its
 * NVJ): the request is the run's own spec, so deciding again finishes what the first delivery started.
 */
async function pendingRun(event: CloudEvent<unknown>, deps: StepDeps): Promise<Normalised> {
  const target = reconcileRun(event, STEP);
  if (!target) return { kind: 'ignore', reason: 'a reconcile for another step' };
  const run = await getRun(deps.kube, target.run);
  if (!run || (run.status?.phase ?? 'Pending') !== 'Pending') return { kind: 'ignore', reason: `run ${target.run} is not Pending` };
  // restart-predictor starts a manual rollback (docs/day2.md): nothing to train.
  if (run.spec.trigger === 'manual-rollback') return { kind: 'ignore', reason: `run ${target.run} is a manual rollback` };
  const model = findModel(deps.catalog, run.spec.model);
  if (!model) return { kind: 'ignore', reason: `model ${run.spec.model} left the catalog` };
  const t = run.spec.training ?? {};
  const data: TrainingRequested = {
    model: run.spec.model, trigger: run.spec.trigger,
    ...(t.dataSource ? { dataSource: t.dataSource } : {}), ...(t.trainingHours ? { trainingHours: t.trainingHours } : {}),
    ...(run.spec.provenance ? { provenance: run.spec.provenance } : {}),
  };
  return { kind: 'request', request: { data, idempotencyKey: run.spec.idempotencyKey, model, origin: { source: event.source, id: event.id } } };
}

async function readState(request: StartRequest, runName: string, deps: StepDeps): Promise<StartState> {
  const { kube } = deps;
  const now = deps.clock.now();
  const [existingRun, lease, lastSuccessAt, controls] = await Promise.all([
    getRun(kube, runName),
    kube.get<LeaseObject>(Resources.lease, lockNameFor(request.model.name)),
    request.data.trigger === 'drift' ? lastSuccess(deps, request.model.name) : Promise.resolve(undefined),
    readControls(kube, request.model.name),
  ]);
  const state: StartState = { runName, now };
  if (existingRun) state.existingRun = existingRun;
  const holder = lease?.spec?.holderIdentity;
  if (lease && holder) {
    state.lock = { holder, expired: leaseExpired(lease, now) };
    if (holder !== runName && isRunTerminal(await getRun(kube, holder))) state.lock.holderFinished = true;
  }
  if (lastSuccessAt) state.lastSuccessAt = lastSuccessAt;
  state.controls = controls;
  return state;
}

async function lastSuccess(deps: StepDeps, model: string): Promise<Date | undefined> {
  // By status.phase, not the phase label: a label that lags the status must not open or close the cooldown.
  const runs = await deps.kube.listAll<ModelRun & Record<string, unknown>>(Resources.modelRun, {
    labelSelector: `${Labels.model}=${model}`,
  });
  let latest: number | undefined;
  for (const r of runs) {
    if (!isServingRun(r)) continue;
    const at = r.status?.finishedAt ?? r.status?.steps?.verify?.finished;
    if (!at) continue;
    const t = new Date(at).getTime();
    if (latest === undefined || t > latest) latest = t;
  }
  return latest === undefined ? undefined : new Date(latest);
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
