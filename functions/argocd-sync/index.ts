import { parseApiServerSource } from '../../events/index.ts';
import { invalid } from '../../runtime/errors.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Resources } from '../../runtime/resources.ts';
import { empty, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { STEP, decide, inputOf, type ArgoAction } from './decide.ts';
import { runArgoEffects } from './effects.ts';
import { faasModule } from '../../runtime/faas.ts';

// argocd-sync: ApiServerSource add/update/delete of every NVJ in the namespace (route `argocd`) → on-success
// triggers, sync-wave annotations, Kubernetes Events for Argo CD notifications, and the Application's
// notebook and model status. Replies empty: nothing downstream waits on this step.

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid(`${STEP} takes CloudEvents`);
    const parsed = parseApiServerSource(input.event);
    if (!parsed.ok) throw invalid(parsed.reason);
    if (parsed.value.mode !== 'resource') return empty; // Ref mode carries no labels or annotations to act on
    const object = parsed.value.object as KubeObject;
    if (object.kind !== Resources.notebookValidationJob.kind || object.apiVersion !== Resources.notebookValidationJob.apiVersion) return empty;
    const now = deps.clock.now();
    const deleted = parsed.value.action === 'delete';
    let decision = inputOf(object, deps.catalog, now, deps.kube.namespace, deleted);
    let actions = decide(decision);
    // The event's copy may be stale (a redelivery predates our own record): act only on the current object.
    // Updates that need no write are decided on the event alone and cost no read of the NVJ.
    if (actions.some(needsCurrentObject)) {
      const current = await deps.kube.get<KubeObject>(Resources.notebookValidationJob, decision.nvj.name, decision.nvj.namespace);
      decision = current ? inputOf(current, deps.catalog, now, deps.kube.namespace) : inputOf(object, deps.catalog, now, deps.kube.namespace, true);
      actions = decide(decision);
    }
    const traceparent = (input.event as unknown as { traceparent?: unknown }).traceparent;
    await runArgoEffects(actions, decision, deps, typeof traceparent === 'string' ? { traceparent } : {});
    return empty;
  },
};

const needsCurrentObject = (a: ArgoAction): boolean => a.kind !== 'ignore' && a.kind !== 'app-status';

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
