import type { CloudEvent } from 'cloudevents';
import { EventTypes, isApiServerEventType, parseApiServerSource, parseEvent } from '../../events/index.ts';
import { findModel, type CatalogModel } from '../../runtime/catalog.ts';
import { restoredProbe } from '../../runtime/rollback.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Annotations, KSERVE_ISVC_LABEL, Labels } from '../../runtime/labels.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Pod, Resources, isPodReady, type ModelRun } from '../../runtime/resources.ts';
import { isReconcile, reconcileRun } from '../../runtime/reconcile.ts';
import { assertRecordAgrees, assertSender, type GuardedData } from '../../runtime/senders.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideRestore, decideVerify, judge, judgeRestore, unreachableButGone, type PodView } from './decide.ts';
import { STEP, probeAll, runVerifyEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';
import { releaseOfRun } from '../../runtime/modelrun.ts';

// verify-endpoint: predictor.restarted and any event about a predictor Pod (added, updated) →
// look again at the model's run that is Verifying; once the new release's pods are all Ready, send them the
// gate's probe rows and compare → deployment.verified / deployment.failed, once per run (docs/verification.md).

/** KServe's label on every predictor pod (runtime/labels.ts). */
export const ISVC_LABEL = KSERVE_ISVC_LABEL;
const DEFAULT_PORT = 8080;

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const event = input.event;

    const target = targetOf(event);
    if (!target) return empty;
    const run = target.kind === 'run' ? await getRun(deps.kube, target.run) : await verifyingRunOf(deps, target.isvc);
    if (!run) return empty;
    // Entry check: a restart the run's promote record does not confirm is refused (docs/security.md).
    if (target.kind === 'run' && target.claimed) assertRecordAgrees(EventTypes.predictorRestarted, target.claimed, run);
    const runName = run.metadata.name ?? '';
    const model = findModel(deps.catalog, run.spec.model);
    if (!model) throw permanent(`model ${run.spec.model} is not in the catalog`);

    // A failed verification's rollback: the restored release is verified like a promotion (runtime/rollback.ts).
    if (run.status?.phase === 'Verifying' && run.status.rollback) {
      const out = await verifyRestore(deps, run, model, traceOf(event, run));
      return out ? reply(out) : empty;
    }

    const needsPods = run.status?.phase === 'Verifying' && !run.status.steps?.verify?.finished;
    const pods = needsPods ? await predictorPods(deps, model.inferenceService) : [];
    let actions = decideVerify(target.kind === 'run' ? 'restarted' : 'pod', run, pods, model);
    const probe = actions.find((a) => a.kind === 'probe');
    if (probe?.kind === 'probe') {
      const outcomes = await probeAll(deps.fetch, probe.targets, probe.body);
      const rows = run.status?.probe?.rows as number[][];
      const expected = run.status?.probe?.expected as unknown[];
      // Only a failure to connect can be the pod's own going (a restart, a scale-down): look again before blaming the release.
      const gone = outcomes.some((o) => o.kind === 'transport') ? unreachableButGone(outcomes, await predictorPods(deps, model.inferenceService)) : undefined;
      actions = gone ? [gone] : judge(outcomes, { rows, expected }, model);
    }
    const out = await runVerifyEffects(actions, { deps, model, runName, ...(run ? { release: releaseOfRun(run) } : {}), ...traceOf(event, run) });
    return out ? reply(out) : empty;
  },
};

async function verifyRestore(deps: StepDeps, run: ModelRun, model: CatalogModel, trace: { traceparent?: string }): Promise<CloudEvent<unknown> | undefined> {
  const runName = run.metadata.name ?? '';
  const rb = run.status?.rollback;
  const pending = rb !== undefined && rb.verified === undefined;
  const probe = pending ? await restoredProbe(deps.kube, run, rb.release) : undefined;
  const pods = pending && probe ? await predictorPods(deps, model.inferenceService) : [];
  let actions = decideRestore(run, pods, model, probe);
  const probing = actions.find((a) => a.kind === 'probe');
  if (probing?.kind === 'probe' && probe && rb) {
    const outcomes = await probeAll(deps.fetch, probing.targets, probing.body);
    const gone = outcomes.some((o) => o.kind === 'transport') ? unreachableButGone(outcomes, await predictorPods(deps, model.inferenceService)) : undefined;
    actions = gone ? [gone] : judgeRestore(rb.release, outcomes, probe, model);
  }
  return runVerifyEffects(actions, { deps, model, runName, ...trace });
}

type Target = { kind: 'run'; run: string; claimed?: GuardedData } | { kind: 'isvc'; isvc: string };

/**
 * What an input is about: predictor.restarted and the watchdog's reconcile name their run; a predictor pod event
 * names only the InferenceService. The pod's own release annotation is not used to find the run: an old pod's events
 * (terminating, deleted) matter to the new run, and a pod may carry a release that is no run at all.
 */
function targetOf(event: CloudEvent<unknown>): Target | undefined {
  if (isReconcile(event)) {
    const target = reconcileRun(event, STEP);
    return target ? { kind: 'run', run: target.run } : undefined;
  }
  if (event.type === EventTypes.predictorRestarted) {
    const parsed = parseEvent(event);
    if (!parsed.ok) throw invalid(parsed.reason);
    if (parsed.type !== EventTypes.predictorRestarted) return undefined;
    assertSender(event);
    return { kind: 'run', run: parsed.data.run, claimed: parsed.data };
  }
  if (!isApiServerEventType(event.type)) return undefined;
  const parsed = parseApiServerSource(event);
  if (!parsed.ok) throw invalid(parsed.reason);
  const value = parsed.value;
  if (value.mode !== 'resource' || value.object.kind !== 'Pod') return undefined;
  const isvc = value.object.metadata.labels?.[ISVC_LABEL];
  if (!isvc) return undefined;
  // Only a pod that serves (Ready, not terminating) can let a run conclude: the verdict waits while a pod of the
  // release is starting or restarting, and never depends on old or terminating pods. Events about any other pod
  // (added NotReady, restarting, terminating, deleted) cost no API call; the one case they could end — a starting
  // pod of the release removed while the rest are Ready — is concluded by the watchdog's reconcile within a tick
  // (docs/verification.md).
  const pod = Pod.safeParse(value.object);
  if (value.action === 'delete' || !pod.success || pod.data.metadata.deletionTimestamp || !isPodReady(pod.data)) return undefined;
  return { kind: 'isvc', isvc };
}

/**
 * The run of a model served by `isvc` whose status says Verifying (read from the ModelRuns, not from a label
 * that can go stale). The per-model lock allows one; should there be more, the newest.
 */
async function verifyingRunOf(deps: StepDeps, isvc: string): Promise<ModelRun | undefined> {
  const models = deps.catalog.models.filter((m) => m.inferenceService === isvc).map((m) => m.name);
  if (models.length === 0) return undefined;
  const selector = models.length === 1 ? `${Labels.model}=${models[0]}` : `${Labels.model} in (${models.join(',')})`;
  const runs = await deps.kube.listAll<ModelRun & KubeObject>(Resources.modelRun, { labelSelector: selector });
  return runs
    .filter((r) => r.status?.phase === 'Verifying' && models.includes(r.spec.model))
    .sort((a, b) => created(b) - created(a) || (b.metadata.name ?? '').localeCompare(a.metadata.name ?? ''))[0];
}

function created(run: ModelRun): number {
  const t = run.metadata.creationTimestamp;
  return t === undefined ? 0 : new Date(t).getTime();
}

async function predictorPods(deps: StepDeps, isvc: string): Promise<PodView[]> {
  const items = await deps.kube.listAll<Pod & KubeObject>(Resources.pod, { labelSelector: `${ISVC_LABEL}=${isvc}` });
  return items.map((raw) => {
    const pod = Pod.safeParse(raw);
    const p = pod.success ? pod.data : raw;
    const release = p.metadata.annotations?.[Annotations.modelRelease];
    const ip = p.status?.podIP;
    const containers = (p.spec as { containers?: Array<{ ports?: Array<{ containerPort?: unknown }> }> } | undefined)?.containers;
    const port = containers?.[0]?.ports?.[0]?.containerPort;
    // A terminating pod is taken out of the endpoints: it no longer serves even while still Ready.
    const serving = isPodReady(p) && !p.metadata.deletionTimestamp && !!ip;
    const created = p.metadata.creationTimestamp;
    return {
      name: p.metadata.name ?? '',
      ...(created ? { created: new Date(created).toISOString() } : {}),
      ...(release ? { release } : {}),
      serving,
      ...(p.metadata.deletionTimestamp ? { terminating: true } : {}),
      ...(ip ? { ip } : {}),
      port: typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 ? port : DEFAULT_PORT,
    };
  });
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
