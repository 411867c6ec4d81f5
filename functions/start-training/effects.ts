import { transition } from '../../runtime/runstate.ts';
import type { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { ConflictError } from '../../runtime/kube.ts';
import { ForbiddenError } from '../../runtime/errors.ts';
import { failRunForbidden } from '../../runtime/finish.ts';
import { acquireLock, enqueueOnLock, takeOverLock } from '../../runtime/lock.ts';
import { getRun } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import { lockNameFor } from '../../runtime/labels.ts';
import type { LeaseObject } from '../../runtime/lock.ts';
import type { StepDeps } from '../../runtime/step.ts';
import type { StartAction, StartInput } from './decide.ts';
import { modelRunManifest, nvjManifest, profileOf } from './manifests.ts';

export const STEP = 'start-training';

/** Lost the lock race between reading state and acquiring: index re-reads and decides again. */
export class LockRaceLost extends Error {}

/** Runs the actions in order; returns the reply event. Every effect tolerates having run before. */
export async function runStartEffects(actions: StartAction[], input: StartInput, deps: StepDeps, traceparent?: string): Promise<CloudEvent<unknown> | undefined> {
  const { kube } = deps;
  const { model, data } = input;
  let modelRun: ModelRun | undefined;
  let replyEvent: CloudEvent<unknown> | undefined;
  const trace = traceparent ? { traceparent } : {};

  for (const action of actions) {
    switch (action.kind) {
      case 'take-over-lock': {
        // The holder's run has ended; its finisher may still be sending the parked request (maybe this one).
        const lease = await kube.get<LeaseObject>(Resources.lease, lockNameFor(model.name));
        if (!lease || lease.spec?.holderIdentity !== action.from) throw new LockRaceLost(lease?.spec?.holderIdentity ?? '');
        const same = (queued: { provenance?: { eventSource?: string; eventId?: string } | undefined }): boolean =>
          queued.provenance?.eventId !== undefined && queued.provenance.eventId === data.provenance?.eventId && queued.provenance.eventSource === data.provenance.eventSource;
        if (!(await takeOverLock(kube, lease, action.run, deps.clock.now(), same))) throw new LockRaceLost(action.from);
        break;
      }
      case 'acquire-lock': {
        const result = await acquireLock(kube, model.name, action.run, action.durationSeconds, deps.clock.now());
        if (!result.acquired) throw new LockRaceLost(result.holder);
        break;
      }
      case 'create-run': {
        const created = await kube.create(Resources.modelRun, modelRunManifest(action.run, data, model, input.idempotencyKey, traceparent));
        modelRun = created.created ? (created.object as unknown as ModelRun) : await getRun(kube, action.run);
        break;
      }
      case 'create-nvj': {
        modelRun ??= await getRun(kube, action.run);
        if (!modelRun) throw new ConflictError(`ModelRun ${action.run} disappeared before its NVJ was created`);
        try {
          await kube.create(Resources.notebookValidationJob, nvjManifest(modelRun, model));
        } catch (err) {
          // The run exists: it fails now naming the missing permission (no run → the 503 reaches the broker).
          if (err instanceof ForbiddenError) return failRunForbidden(deps, modelRun, 'training', err, { what: `create the NotebookValidationJob ${action.run}`, ...trace });
          throw err;
        }
        break;
      }
      case 'mark-training': {
        const at = deps.clock.now().toISOString();
        await transition(kube, action.run, { from: 'Pending', to: 'Training', now: at, patch: (status) => ({
            ...status,
            step: 'training',
            startedAt: status.startedAt ?? at,
            steps: { ...status.steps, training: { started: at, job: action.run } },
            deadlines: { step: action.deadline, run: action.runDeadline },
          }) });
        break;
      }
      case 'enqueue': {
        const lease = await kube.get<LeaseObject>(Resources.lease, lockNameFor(model.name));
        if (!lease) throw new ConflictError('the lock was freed while queueing: retry starts the run');
        await enqueueOnLock(kube, lease, action.request);
        break;
      }
      case 'reply-started': {
        const run = modelRun ?? (await getRun(kube, action.run));
        const startedAt = run?.status?.steps?.training?.started ?? run?.metadata.creationTimestamp ?? deps.clock.now().toISOString();
        replyEvent = buildEvent(EventTypes.trainingStarted, {
          step: STEP,
          data: {
            model: model.name, run: action.run, trigger: data.trigger, profile: run?.spec.profile ?? profileOf(data, model),
            notebookValidationJob: action.run, startedAt: new Date(startedAt).toISOString(), deadline: action.deadline,
          },
          ...trace,
        });
        break;
      }
      case 'reply-skipped': {
        replyEvent = buildEvent(EventTypes.trainingSkipped, {
          step: STEP,
          model: model.name,
          data: {
            model: model.name, reason: action.reason, message: action.message, ...(action.holder ? { holder: action.holder } : {}),
            ...(action.pausedBy ? { pausedBy: action.pausedBy } : {}), ...(action.pausedReason ? { pausedReason: action.pausedReason } : {}),
          },
          id: `${input.idempotencyKey.length > 200 ? input.idempotencyKey.slice(0, 200) : input.idempotencyKey}.training.skipped`,
          ...trace,
        });
        break;
      }
    }
  }
  return replyEvent;
}
