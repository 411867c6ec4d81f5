import type { CloudEvent } from 'cloudevents';
import { ApiServerEventTypes, EventTypes, isApiServerEventType, parseApiServerSource, parseEvent } from '../../events/index.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Annotations } from '../../runtime/labels.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Pod, Resources, isPodReady } from '../../runtime/resources.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideVerify, judge, type PodView, type VerifyTrigger } from './decide.ts';
import { STEP, probeAll, runVerifyEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

// verify-endpoint: predictor.restarted and predictor Pod updates → once only pods of the new release serve,
// send them the gate's probe rows and compare → deployment.verified / deployment.failed, once per run.

export const ISVC_LABEL = 'serving.kserve.io/inferenceservice';
const DEFAULT_PORT = 8080;

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const event = input.event;

    const target = targetOf(event);
    if (!target) return empty;
    const run = await getRun(deps.kube, target.run);
    if (!run) return empty;
    const model = findModel(deps.catalog, run.spec.model);
    if (!model) throw permanent(`model ${run.spec.model} is not in the catalog`);
    // A pod of some other InferenceService that happens to carry our annotation is not this run's.
    if (target.isvc !== undefined && target.isvc !== model.inferenceService) return empty;

    const needsPods = run.status?.phase === 'Verifying' && !run.status.steps?.verify?.finished;
    const pods = needsPods ? await predictorPods(deps, model.inferenceService) : [];
    let actions = decideVerify(target.trigger, run, pods, model);
    const probe = actions.find((a) => a.kind === 'probe');
    if (probe?.kind === 'probe') {
      const outcomes = await probeAll(deps.fetch, probe.targets, probe.body);
      const rows = run.status?.probe?.rows as number[][];
      const expected = run.status?.probe?.expected as unknown[];
      actions = judge(outcomes, { rows, expected }, model);
    }
    const out = await runVerifyEffects(actions, { deps, model, runName: target.run, ...traceOf(event, run) });
    return out ? reply(out) : empty;
  },
};

/** The run an input is about: the event's run, or the release a predictor pod was started for. */
function targetOf(event: CloudEvent<unknown>): { run: string; trigger: VerifyTrigger; isvc?: string } | undefined {
  if (event.type === EventTypes.predictorRestarted) {
    const parsed = parseEvent(event);
    if (!parsed.ok) throw invalid(parsed.reason);
    if (parsed.type !== EventTypes.predictorRestarted) return undefined;
    return { run: parsed.data.run, trigger: 'restarted' };
  }
  if (!isApiServerEventType(event.type)) return undefined;
  const parsed = parseApiServerSource(event);
  if (!parsed.ok) throw invalid(parsed.reason);
  const value = parsed.value;
  if (value.mode !== 'resource' || value.type === ApiServerEventTypes.delete || value.object.kind !== 'Pod') return undefined;
  const isvc = value.object.metadata.labels?.[ISVC_LABEL];
  const run = value.object.metadata.annotations?.[Annotations.modelRelease];
  // Releases we did not promote (an operator's value, a pre-lifecycle pod) are not ModelRun names.
  if (!isvc || !run || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(run) || run.length > 63) return undefined;
  return { run, trigger: 'pod', isvc };
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
    return {
      name: p.metadata.name ?? '',
      ...(release ? { release } : {}),
      serving,
      ...(ip ? { ip } : {}),
      port: typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536 ? port : DEFAULT_PORT,
    };
  });
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
