import { transition } from '../../runtime/runstate.ts';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { toLifecycleError, type LifecycleError } from '../../runtime/errors.ts';
import { ConflictError, type KubeObject, type KubePort } from '../../runtime/kube.ts';
import { Annotations, Labels, MANAGER, runLabels } from '../../runtime/labels.ts';
import { acquireLock, releaseLock } from '../../runtime/lock.ts';
import { getRun, isRunTerminal } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import type { StepDeps } from '../../runtime/step.ts';
import {
  STEP, nextTriggerStatus, outcomeEvent, shouldRecompute,
  type ArgoAction, type DecideInput, type EventSpec, type NvjFacts, type TargetAction,
} from './decide.ts';
import { summariseModels, summariseNotebooks } from './status.ts';
import { readControls, type ModelControls } from '../../runtime/controls.ts';
import { TriggerAnnotations as A, type TargetRecord } from './triggers.ts';

// Runs argocd-sync's actions. Every effect tolerates having run before: Events have deterministic names
// (AlreadyExists is success), the gated restart's ModelRun and Lease are keyed by the NVJ, and the NVJ is
// patched only with annotations that actually change.

export const LIST_PAGE_SIZE = 500;

export interface EffectOptions {
  traceparent?: string;
}

export async function runArgoEffects(actions: readonly ArgoAction[], input: DecideInput, deps: StepDeps, opts: EffectOptions = {}): Promise<void> {
  const { nvj, now } = input;
  const outcomes: TargetRecord[] = [];
  let retry: LifecycleError | undefined;
  for (const action of actions) {
    switch (action.kind) {
      case 'ignore':
        deps.logger.debug({ reason: action.reason }, 'ignored');
        break;
      case 'phase-event':
      case 'trigger-invalid':
        await createEvent(deps.kube, nvj, action.event, now);
        break;
      case 'app-status':
        await updateApplicationStatus(deps, action, now);
        break;
      case 'record': {
        const annotations: Record<string, string | null> = { ...action.annotations };
        if (outcomes.length > 0 && input.triggers.kind === 'valid') {
          const status = nextTriggerStatus(input.recorded.triggerStatus, outcomes, input.triggers.targets.length, now);
          annotations[A.triggerStatus] = JSON.stringify(status);
        }
        await patchNvjAnnotations(deps.kube, nvj, annotations);
        break;
      }
      default: {
        let record: TargetRecord;
        try {
          record = await runTarget(action, deps, nvj, now, opts);
        } catch (err) {
          const e = toLifecycleError(err);
          // Transient: leave the target unrecorded (status `pending`) and let the redelivery retry it.
          if (e.kind === 'retryable') { retry ??= e; deps.logger.warn({ target: action.target, err: e.message }, 'trigger will be retried'); continue; }
          record = recordOf(action, 'failed', e.message, now);
        }
        outcomes.push(record);
        const event = outcomeEvent(nvj.name, record);
        if (event) await createEvent(deps.kube, nvj, event, now);
        break;
      }
    }
  }
  if (retry !== undefined) throw retry;
}

function recordOf(action: TargetAction, outcome: TargetRecord['outcome'], message: string, now: Date, run?: string): TargetRecord {
  const t = action.target;
  return { index: action.index, kind: t.kind, name: t.name, namespace: t.namespace, action: t.action, outcome, message, at: now.toISOString(), ...(run ? { run } : {}) };
}

async function runTarget(action: TargetAction, deps: StepDeps, nvj: NvjFacts, now: Date, opts: EffectOptions): Promise<TargetRecord> {
  const { kube } = deps;
  const t = action.target;
  switch (action.kind) {
    case 'trigger-failed':
      return recordOf(action, 'failed', action.message, now);
    case 'restart-deployment': {
      const patched = await kube.mergePatch(Resources.deployment, t.name, { spec: { template: { metadata: { annotations: { [A.restartedAt]: action.restartedAt } } } } }, { namespace: t.namespace });
      return patched
        ? recordOf(action, 'succeeded', `rollout restart at ${action.restartedAt}`, now)
        : recordOf(action, 'failed', `Deployment ${t.namespace}/${t.name} not found`, now);
    }
    case 'refresh-app': {
      const patched = await kube.mergePatch(Resources.application, t.name, { metadata: { annotations: { [A.argocdRefresh]: 'normal' } } }, { namespace: t.namespace });
      return patched
        ? recordOf(action, 'succeeded', 'refresh requested', now)
        : recordOf(action, 'failed', `Application ${t.namespace}/${t.name} not found`, now);
    }
    case 'sync-app':
      return syncApplication(action, kube, now);
    case 'restart-isvc':
      return gatedRestart(action, deps, nvj, now, opts);
  }
}

interface ApplicationObject extends KubeObject {
  spec?: { source?: { targetRevision?: string }; sources?: Array<{ targetRevision?: string }> };
  operation?: unknown;
  status?: { operationState?: { phase?: string } };
}

/** A real `operation.sync`, written only if nobody changed the Application since it was read. */
async function syncApplication(action: Extract<TargetAction, { kind: 'sync-app' }>, kube: KubePort, now: Date): Promise<TargetRecord> {
  const t = action.target;
  for (let attempt = 0; attempt < 3; attempt++) {
    const app = await kube.get<ApplicationObject>(Resources.application, t.name, t.namespace);
    if (!app) return recordOf(action, 'failed', `Application ${t.namespace}/${t.name} not found`, now);
    const phase = app.status?.operationState?.phase;
    if (app.operation !== undefined && app.operation !== null) return recordOf(action, 'deferred', 'an operation is already set on the Application; retried on the next update', now);
    if (phase === 'Running' || phase === 'Terminating') return recordOf(action, 'deferred', `an operation is ${phase.toLowerCase()}; retried on the next update`, now);
    const revision = app.spec?.source?.targetRevision || app.spec?.sources?.[0]?.targetRevision || 'HEAD';
    const operation = { sync: { revision, syncStrategy: { hook: {} } }, initiatedBy: { username: MANAGER } };
    try {
      const patched = await kube.jsonPatch(Resources.application, t.name, [
        { op: 'test', path: '/metadata/resourceVersion', value: app.metadata?.resourceVersion },
        { op: 'add', path: '/operation', value: operation },
      ], { namespace: t.namespace });
      if (!patched) return recordOf(action, 'failed', `Application ${t.namespace}/${t.name} not found`, now);
      return recordOf(action, 'succeeded', `sync of revision ${revision} requested`, now);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  return recordOf(action, 'deferred', 'the Application kept changing; retried on the next update', now);
}

/**
 * `restart` of an InferenceService never rolls the predictor directly: it opens a ModelRun at the gate for the
 * NVJ's artifact (under the model lock) and emits training.succeeded, so gate-health judges the model and
 * restart-predictor rolls it only when approved.
 */
async function gatedRestart(action: Extract<TargetAction, { kind: 'restart-isvc' }>, deps: StepDeps, nvj: NvjFacts, now: Date, opts: EffectOptions): Promise<TargetRecord> {
  const { kube } = deps;
  const existing = await getRun(kube, action.run);
  // Everything already happened (the record was lost): do not take a lock for a finished run.
  if (existing && isRunTerminal(existing)) return recordOf(action, 'succeeded', `gated restart run ${action.run} already ended (${existing.status?.phase ?? ''})`, now, action.run);
  const lock = await acquireLock(kube, action.model, action.run, action.lockSeconds, now);
  if (!lock.acquired) return recordOf(action, 'skipped', `skipped: run ${lock.holder} holds the lock`, now);
  try {
    if (!existing) await kube.create(Resources.modelRun, modelRunFor(action, nvj));
    const at = now.toISOString();
    const next = action.profile === 'gpu' ? 'Copying' : 'Gating';
    await transition(kube, action.run, { from: 'Pending', to: next, now: at, patch: (status) => ({
      ...status, step: next === 'Copying' ? 'copy' : 'gate', startedAt: status.startedAt ?? at,
      message: `gated restart of ${action.target.name} requested by ${nvj.namespace}/${nvj.name}`,
      steps: { ...status.steps, training: { finished: action.completedAt, outcome: 'Succeeded', message: `notebook validation ${nvj.name} succeeded`, job: nvj.name } },
      artifact: { path: action.artifactPath },
    }) });
  } catch (err) {
    // A refused ModelRun can never start: free the lock for the next run.
    if (toLifecycleError(err).kind !== 'retryable') await releaseLock(kube, action.model, action.run);
    throw err;
  }
  await deps.sink.send(buildEvent(EventTypes.trainingSucceeded, {
    step: STEP,
    data: { model: action.model, run: action.run, profile: action.profile, completedAt: action.completedAt, artifactPath: action.artifactPath },
    ...(opts.traceparent ? { traceparent: opts.traceparent } : {}),
  }));
  return recordOf(action, 'succeeded', `gated restart: run ${action.run} sent to the ${action.profile === 'gpu' ? 'copy and ' : ''}gate`, now, action.run);
}

function modelRunFor(action: Extract<TargetAction, { kind: 'restart-isvc' }>, nvj: NvjFacts): KubeObject {
  return {
    metadata: {
      name: action.run,
      labels: { ...runLabels(action.model, action.run, 'gate'), [Labels.trigger]: 'manual', [Labels.phase]: 'Pending' },
      annotations: { [Annotations.idempotencyKey]: action.idempotencyKey },
    },
    spec: {
      model: action.model, trigger: 'manual', idempotencyKey: action.idempotencyKey, profile: action.profile,
      provenance: { eventSource: nvj.name }, requestedBy: STEP,
      reason: `on-success-trigger of NotebookValidationJob ${nvj.namespace}/${nvj.name}: restart InferenceService ${action.target.name}`,
    },
  };
}

async function createEvent(kube: KubePort, nvj: NvjFacts, spec: EventSpec, now: Date): Promise<void> {
  const at = now.toISOString();
  const labels: Record<string, string> = { [Labels.notificationType]: spec.notificationType, [Labels.managedBy]: MANAGER };
  if (nvj.partOf) labels[Labels.partOf] = nvj.partOf;
  await kube.create(Resources.event, {
    apiVersion: 'v1', kind: 'Event',
    metadata: { name: spec.name, namespace: nvj.namespace, labels },
    involvedObject: { apiVersion: Resources.notebookValidationJob.apiVersion, kind: Resources.notebookValidationJob.kind, name: nvj.name, namespace: nvj.namespace, ...(nvj.uid ? { uid: nvj.uid } : {}) },
    reason: spec.reason, message: spec.message, type: spec.type,
    source: { component: `${MANAGER}-${STEP}` }, reportingComponent: `${MANAGER}/${STEP}`, reportingInstance: STEP,
    firstTimestamp: at, lastTimestamp: at, count: 1,
  });
}

/** Merge-patch only the annotations whose value changes: a redelivery that changes nothing costs no PATCH. */
async function patchNvjAnnotations(kube: KubePort, nvj: NvjFacts, annotations: Record<string, string | null>): Promise<void> {
  const changed = Object.fromEntries(Object.entries(annotations).filter(([k, v]) => (v === null ? k in nvj.annotations : nvj.annotations[k] !== v)));
  if (Object.keys(changed).length === 0) return;
  await kube.mergePatch(Resources.notebookValidationJob, nvj.name, { metadata: { annotations: changed } }, { namespace: nvj.namespace });
}

export interface AggregateResult {
  recomputed: boolean;
  total?: number;
}

/**
 * Each catalog model's day-2 controls (docs/day2.md): one `get` per model (the Role names each ConfigMap, no list).
 * One that cannot be read is left out of the summary and logged; the status is written anyway.
 */
async function controlsOf(deps: StepDeps): Promise<Map<string, ModelControls>> {
  const out = new Map<string, ModelControls>();
  await Promise.all(deps.catalog.models.map(async (m) => {
    try {
      out.set(m.name, await readControls(deps.kube, m.name));
    } catch (err) {
      deps.logger.warn({ model: m.name, err: (err as Error).message }, 'cannot read the model controls');
    }
  }));
  return out;
}

/** `mlops.dev/notebook-status` and `mlops.dev/model-status` on the Application, from paginated lists, debounced. */
export async function updateApplicationStatus(deps: StepDeps, action: Extract<ArgoAction, { kind: 'app-status' }>, now: Date): Promise<AggregateResult> {
  const { kube } = deps;
  const app = await kube.get<KubeObject>(Resources.application, action.app, action.namespace);
  if (!app) {
    deps.logger.debug({ app: action.app, namespace: action.namespace }, 'no such Application; status not written');
    return { recomputed: false };
  }
  if (!shouldRecompute(app.metadata?.annotations?.[A.statusUpdatedAt], now, action.force)) return { recomputed: false };
  const [nvjs, runs, controls] = await Promise.all([
    kube.listAll<KubeObject>(Resources.notebookValidationJob, { namespace: action.nvjNamespace, labelSelector: `${Labels.partOf}=${action.app}`, pageSize: LIST_PAGE_SIZE }),
    kube.listAll<ModelRun & KubeObject>(Resources.modelRun, { pageSize: LIST_PAGE_SIZE }),
    controlsOf(deps),
  ]);
  const notebooks = summariseNotebooks(nvjs, now);
  const models = summariseModels(deps.catalog, runs, now, controls);
  await kube.mergePatch(Resources.application, action.app, {
    metadata: { annotations: { [A.notebookStatus]: JSON.stringify(notebooks), [A.modelStatus]: JSON.stringify(models), [A.statusUpdatedAt]: now.toISOString() } },
  }, { namespace: action.namespace });
  return { recomputed: true, total: notebooks.total };
}
