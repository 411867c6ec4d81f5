import { runOf, transition } from '../../runtime/runstate.ts';
import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { failRunForbidden, finishRun } from '../../runtime/finish.ts';
import { ForbiddenError } from '../../runtime/errors.ts';
import { ConflictError } from '../../runtime/kube.ts';
import { recordStepStarted } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import type { StepDeps } from '../../runtime/step.ts';
import type { CopyAction } from './decide.ts';
import { copyJobManifest } from './manifests.ts';

export const STEP = 'copy-gpu-model';

/** Runs the actions in order; returns the reply event, if any. Every effect tolerates having run before. */
export async function runCopyEffects(actions: CopyAction[], ctx: { run?: ModelRun; model: CatalogModel; traceparent?: string }, deps: StepDeps): Promise<CloudEvent<unknown> | undefined> {
  const { kube } = deps;
  const now = deps.clock.now().toISOString();
  const trace = ctx.traceparent ? { traceparent: ctx.traceparent } : {};
  // An outcome is replied only when the run carries it (written now, or by a delivery that won the race).
  let standing: 'copied' | 'failed' | undefined;
  let out: CloudEvent<unknown> | undefined;

  for (const action of actions) {
    switch (action.kind) {
      case 'ignore':
        deps.logger.debug({ reason: action.reason }, 'ignored');
        break;
      case 'create-job': {
        if (!ctx.run) throw new ConflictError(`ModelRun ${action.run} disappeared before its copy Job was created`);
        let created;
        try {
          created = await kube.create(Resources.job, copyJobManifest(ctx.run, ctx.model));
        } catch (err) {
          if (err instanceof ForbiddenError) return failRunForbidden(deps, ctx.run, 'copy', err, { what: `create the copy Job ${action.job}`, ...trace });
          throw err;
        }
        deps.logger.info({ job: action.job, created: created.created }, 'copy job');
        break;
      }
      case 'record-started':
        await recordStepStarted(kube, action.run, { step: 'copy', phase: 'Copying', job: action.job, deadline: action.deadline, now });
        break;
      case 'record-copied': {
        const result = await transition(kube, action.run, { from: 'Copying', to: 'Gating', now, patch: (status) => {
          if (status.steps?.copy?.finished) return undefined;
          return {
            ...status,
            step: 'gate',
            steps: { ...status.steps, copy: { ...status.steps?.copy, finished: now, outcome: 'copied', message: action.message } },
            artifact: { ...status.artifact, ...action.artifact },
          };
        } });
        if (runOf(result)?.status?.steps?.copy?.outcome === 'copied') standing = 'copied';
        break;
      }
      case 'fail-run': {
        const run = await finishRun(deps, action.run, {
          from: 'Copying', phase: 'Failed', step: STEP, message: action.message, ...trace,
          patch: (status) => ({ ...status, step: 'copy', steps: { ...status.steps, copy: { ...status.steps?.copy, finished: now, outcome: action.reason, message: action.message } } }),
        });
        if (run?.status?.steps?.copy?.finished && run.status.steps.copy.outcome !== 'copied') standing = 'failed';
        break;
      }
      case 'reply-copied':
        // Without a record action in the list this is a replay of a recorded outcome.
        if (standing === undefined && actions.some((a) => a.kind === 'record-copied')) break;
        out = buildEvent(EventTypes.modelCopied, { step: STEP, data: action.data, profile: 'gpu', ...trace });
        break;
      case 'reply-run-failed':
        if (standing === undefined && actions.some((a) => a.kind === 'fail-run')) break;
        out = buildEvent(EventTypes.runFailed, { step: STEP, data: action.data, profile: 'gpu', ...trace });
        break;
    }
  }
  return out;
}

