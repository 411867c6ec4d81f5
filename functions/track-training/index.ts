import { transition } from '../../runtime/runstate.ts';
import type { CloudEvent } from 'cloudevents';
import { EventTypes, MESSAGE_MAX, buildEvent, clip, parseApiServerSource } from '../../events/index.ts';
import { invalid } from '../../runtime/errors.ts';
import { finishRun } from '../../runtime/finish.ts';
import { Labels, MANAGER, stagedArtifactPath as artifactPath } from '../../runtime/labels.ts';
import { getRun } from '../../runtime/modelrun.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { isReconcile, reconcileRun } from '../../runtime/reconcile.ts';
import { Resources } from '../../runtime/resources.ts';
import { traceOf } from '../../runtime/trace.ts';
import { empty, reply, type StepDeps, type StepDefinition, type StepInput, type StepReply } from '../../runtime/step.ts';
import { decideTrack, type TrackAction } from './decide.ts';
import { faasModule } from '../../runtime/faas.ts';

// track-training: ApiServerSource updates of our NVJs → training.succeeded / training.failed, once per run.

const STEP = 'track-training';

export const step: StepDefinition = {
  name: STEP,
  input: 'cloudevent',
  async handle(input: StepInput, deps: StepDeps): Promise<StepReply> {
    if (input.kind !== 'event') throw invalid('track-training takes CloudEvents');
    const nvj = await nvjOf(input.event, deps);
    if (!nvj) return empty;
    const labels = nvj.metadata.labels ?? {};
    const runName = labels[Labels.run];
    if (nvj.kind !== 'NotebookValidationJob' || labels[Labels.managedBy] !== MANAGER || !runName) return empty;
    const phase = nvj.status?.phase;
    // The phase flaps and every status write is an update: non-terminal updates cost no API call.
    if (phase !== 'Succeeded' && phase !== 'Failed') return empty;

    const run = await getRun(deps.kube, runName);
    const profile = run?.spec.profile ?? 'cpu';
    const actions = decideTrack({ phase, message: typeof nvj.status?.message === 'string' ? nvj.status.message : '', ...(nvj.status?.completionTime ? { completionTime: String(nvj.status.completionTime) } : {}) }, run, profile);
    const { traceparent } = traceOf(input.event, run);
    const event = await runEffects(actions, deps, runName, run?.spec.model ?? labels[Labels.model] ?? '', profile, traceparent);
    return event ? reply(event) : empty;
  },
};

type NvjView = { kind?: string; metadata: { labels?: Record<string, string> }; status?: { phase?: string; message?: string; completionTime?: string } };

/** The NVJ as the ApiServerSource delivered it, or — when the reconcile wakes us — as the API has it now. */
async function nvjOf(event: CloudEvent<unknown>, deps: StepDeps): Promise<NvjView | undefined> {
  if (isReconcile(event)) {
    const target = reconcileRun(event, STEP);
    if (!target) return undefined;
    return deps.kube.get<NvjView & KubeObject>(Resources.notebookValidationJob, target.run);
  }
  const parsed = parseApiServerSource(event);
  if (!parsed.ok) throw invalid(parsed.reason);
  if (parsed.value.mode !== 'resource' || parsed.value.action === 'delete') return undefined;
  return parsed.value.object;
}

async function runEffects(actions: TrackAction[], deps: StepDeps, run: string, model: string, profile: 'cpu' | 'gpu', traceparent?: string): Promise<CloudEvent<unknown> | undefined> {
  const now = deps.clock.now().toISOString();
  const trace = traceparent ? { traceparent } : {};
  let out: CloudEvent<unknown> | undefined;
  for (const action of actions) {
    switch (action.kind) {
      case 'ignore':
        deps.logger.debug({ reason: action.reason }, 'ignored');
        break;
      case 'record-success': {
        await transition(deps.kube, run, { from: 'Training', to: action.next, now, patch: (status) => {
          if (status.steps?.training?.finished) return undefined;
          const warnings = action.warning ? [...(status.warnings ?? []), action.warning] : status.warnings;
          return {
            ...status,
            step: action.next === 'Copying' ? 'copy' : 'gate',
            ...(warnings ? { warnings } : {}),
            steps: { ...status.steps, training: { ...status.steps?.training, finished: now, outcome: 'Succeeded', message: action.warning ?? 'notebook succeeded' } },
            artifact: { path: artifactPath(run, model) },
          };
        } });
        break;
      }
      case 'record-failure': {
        await finishRun(deps, run, {
          from: 'Training', phase: 'Failed', step: STEP, message: clip(`training failed: ${action.message}`, MESSAGE_MAX),
          patch: (status) => ({ ...status, step: 'training', steps: { ...status.steps, training: { ...status.steps?.training, finished: now, outcome: 'Failed', message: action.message } } }),
          ...trace,
        });
        break;
      }
      case 'reply-succeeded':
        out = buildEvent(EventTypes.trainingSucceeded, {
          step: STEP,
          data: { model, run, profile, completedAt: action.completedAt ?? now, artifactPath: artifactPath(run, model), ...(action.warning ? { warning: action.warning } : {}) },
          ...trace,
        });
        break;
      case 'reply-failed':
        out = buildEvent(EventTypes.trainingFailed, { step: STEP, data: { model, run, profile, phase: 'Failed', message: action.message }, ...trace });
        break;
    }
  }
  return out;
}

// The faas-js-runtime module (runtime/faas.ts): what the container and `func` start.
export const { handle, init, shutdown, liveness, readiness } = faasModule(step);
