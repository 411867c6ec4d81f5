import { runOf, transition } from '../../runtime/runstate.ts';
import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { ConflictError } from '../../runtime/kube.ts';
import { failRunForbidden, finishRun } from '../../runtime/finish.ts';
import { ForbiddenError } from '../../runtime/errors.ts';
import { Labels } from '../../runtime/labels.ts';
import { recordStepStarted } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import type { StepDeps } from '../../runtime/step.ts';
import type { GateAction } from './decide.ts';
import { gateJobManifest } from './manifests.ts';
import type { ServedRelease } from './report.ts';

export const STEP = 'gate-health';

/** Runs the actions in order; returns the reply event, if any. Every effect tolerates having run before. */
export async function runGateEffects(actions: GateAction[], ctx: { run?: ModelRun; model: CatalogModel; traceparent?: string }, deps: StepDeps): Promise<CloudEvent<unknown> | undefined> {
  const { kube } = deps;
  const now = deps.clock.now().toISOString();
  const trace = ctx.traceparent ? { traceparent: ctx.traceparent } : {};
  // A verdict is replied only when the run carries it (written now, or by a delivery that won the race).
  let standing: 'approved' | 'rejected' | undefined;
  let out: CloudEvent<unknown> | undefined;

  for (const action of actions) {
    switch (action.kind) {
      case 'ignore':
        deps.logger.debug({ reason: action.reason }, 'ignored');
        break;
      case 'create-job': {
        if (!ctx.run) throw new ConflictError(`ModelRun ${action.run} disappeared before its gate Job was created`);
        let created;
        try {
          created = await kube.create(Resources.job, gateJobManifest(ctx.run, ctx.model));
        } catch (err) {
          if (err instanceof ForbiddenError) return failRunForbidden(deps, ctx.run, 'gate', err, { what: `create the gate Job ${action.job}`, ...(ctx.traceparent ? { traceparent: ctx.traceparent } : {}) });
          throw err;
        }
        deps.logger.info({ job: action.job, created: created.created }, 'gate job');
        break;
      }
      case 'record-started':
        await recordStepStarted(kube, action.run, { step: 'gate', phase: 'Gating', job: action.job, deadline: action.deadline, now });
        break;
      case 'record-approved': {
        const result = await transition(kube, action.run, { from: 'Gating', to: 'Promoting', now, patch: (status) => {
          if (status.steps?.gate?.finished) return undefined;
          const warnings = [...(status.warnings ?? []), ...action.warnings];
          return {
            ...status,
            step: 'promote',
            ...(warnings.length > 0 ? { warnings } : {}),
            steps: { ...status.steps, gate: { ...status.steps?.gate, finished: now, outcome: 'approved', message: action.message } },
            gate: action.gate,
            probe: action.probe,
            artifact: { ...status.artifact, ...action.artifact },
          };
        } });
        if (runOf(result)?.status?.steps?.gate?.outcome === 'approved') standing = 'approved';
        break;
      }
      case 'record-rejected': {
        const run = await finishRun(deps, action.run, {
          from: 'Gating', phase: 'Rejected', step: STEP, message: action.message, ...trace,
          patch: (status) => ({ ...status, step: 'gate', steps: { ...status.steps, gate: { ...status.steps?.gate, finished: now, outcome: 'rejected', message: action.message } }, gate: action.gate }),
        });
        if (run?.status?.steps?.gate?.outcome === 'rejected') standing = 'rejected';
        break;
      }
      case 'reply-approved':
        // Without a record action in the list this is a replay of a recorded verdict.
        if (standing === undefined && actions.some((a) => a.kind === 'record-approved')) break;
        out = buildEvent(EventTypes.modelApproved, { step: STEP, data: action.data, profile: ctx.run?.spec.profile ?? 'cpu', ...trace });
        break;
      case 'reply-rejected':
        if (standing === undefined && actions.some((a) => a.kind === 'record-rejected')) break;
        out = buildEvent(EventTypes.modelRejected, { step: STEP, data: action.data, profile: ctx.run?.spec.profile ?? 'cpu', ...trace });
        break;
    }
  }
  return out;
}

/** The newest Succeeded run of the model (the served release) and its recorded gate evidence. */
export async function readServedRelease(deps: StepDeps, model: string, exclude: string): Promise<ServedRelease | undefined> {
  const runs = await deps.kube.listAll<ModelRun & Record<string, unknown>>(Resources.modelRun, { labelSelector: `${Labels.model}=${model},${Labels.phase}=Succeeded` });
  let newest: { run: ModelRun; at: number } | undefined;
  for (const r of runs) {
    if (r.metadata.name === exclude) continue;
    const at = Date.parse(String(r.status?.finishedAt ?? r.metadata.creationTimestamp ?? ''));
    if (Number.isNaN(at)) continue;
    if (!newest || at > newest.at) newest = { run: r, at };
  }
  if (!newest) return undefined;
  const load = newest.run.status?.gate?.report?.loadSeconds;
  const bytes = newest.run.status?.artifact?.bytes;
  return {
    run: newest.run.metadata.name ?? '',
    ...(typeof load === 'number' ? { loadSeconds: load } : {}),
    ...(typeof bytes === 'number' ? { bytes } : {}),
  };
}

