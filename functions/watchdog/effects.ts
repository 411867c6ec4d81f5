import { EventTypes, MESSAGE_MAX, buildEvent, clip, type RunStep, type TrainingRequested } from '../../events/index.ts';
import { finishRun, resubmitQueued } from '../../runtime/finish.ts';
import { ConflictError, type KubeObject, type KubePort } from '../../runtime/kube.ts';
import { Annotations, Labels, MANAGER } from '../../runtime/labels.ts';
import { releaseLock } from '../../runtime/lock.ts';
import { updateRunStatus } from '../../runtime/modelrun.ts';
import { Resources } from '../../runtime/resources.ts';
import type { StepDeps } from '../../runtime/step.ts';
import type { WatchdogAction } from './decide.ts';
import type { ReconcileAction } from './reconcile.ts';

// The watchdog's effects. Each is idempotent and guarded by a compare-and-swap, so two overlapping ticks (or a
// tick racing the step that finishes the run) never fail a run twice or send a second event for one decision.

export const STEP = 'watchdog';
export const MEMORY_CONFIGMAP = 'model-lifecycle-watchdog';

interface ConfigMap extends KubeObject { data?: Record<string, string> }

/** model → last slot a catch-up was sent for. */
export async function readRemembered(kube: KubePort): Promise<Record<string, string>> {
  const cm = await kube.get<ConfigMap>(Resources.configMap, MEMORY_CONFIGMAP);
  return { ...(cm?.data ?? {}) };
}

/** Record `slot` as sent for `model`: create-or-replace with optimistic concurrency (re-read on conflict). */
export async function rememberCatchUp(kube: KubePort, model: string, slot: string, attempts = 5): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      const cm = await kube.get<ConfigMap>(Resources.configMap, MEMORY_CONFIGMAP);
      if (!cm) {
        const created = await kube.create<ConfigMap>(Resources.configMap, {
          metadata: { name: MEMORY_CONFIGMAP, labels: { [Labels.managedBy]: MANAGER } },
          data: { [model]: slot },
        });
        if (created.created) return;
        throw new ConflictError(`${MEMORY_CONFIGMAP} was created concurrently`);
      }
      if (cm.data?.[model] === slot) return;
      await kube.replace<ConfigMap>(Resources.configMap, { ...cm, data: { ...cm.data, [model]: slot } });
      return;
    } catch (err) {
      if (!(err instanceof ConflictError) || i >= attempts - 1) throw err;
    }
  }
}

/** A reconcile action: wake a step (one event per run, target and tick: a redelivered tick sends the same id) or fix a lagging phase label. */
export async function runReconcileAction(action: ReconcileAction, deps: StepDeps, tickId: string): Promise<void> {
  if (action.kind === 'resend-run-failed') {
    await sendRunFailed(deps, { model: action.model, run: action.run, step: action.step, reason: action.reason, message: action.message }, {});
    await clearPendingNotice(deps.kube, action.run);
    deps.logger.warn({ run: action.run }, 'reconcile: run.failed owed by an interrupted tick sent');
    return;
  }
  if (action.kind === 'sync-label') {
    await deps.kube.mergePatch(Resources.modelRun, action.run, { metadata: { labels: { [Labels.phase]: action.phase } } });
    return;
  }
  await deps.sink.send(buildEvent(EventTypes.runReconcile, {
    step: STEP,
    data: { model: action.model, run: action.run, target: action.target, reason: action.reason },
    id: `${action.run}.reconcile.${action.target}.${tickId}`.slice(0, 250),
  }));
  deps.logger.info({ run: action.run, target: action.target, reason: action.reason }, 'reconcile: step woken');
}

/** Runs one action; throws on failure (the caller collects failures so one item never stops the others). */
export async function runAction(action: WatchdogAction, deps: StepDeps, traceparent?: string): Promise<void> {
  const trace = traceparent ? { traceparent } : {};
  switch (action.kind) {
    case 'fail-verify':
      return failVerify(action, deps, trace);
    case 'fail-run':
      return failRun(action, deps, trace);
    case 'release-lock': {
      if (!action.holder) {
        // A Lease without a holder protects nothing; releaseLock only frees a named holder's lock.
        await deps.kube.delete(Resources.lease, action.lease);
        return;
      }
      // The parked request is sent before the Lease holding it is deleted (runtime/lock.ts).
      await releaseLock(deps.kube, action.model, action.holder, (queued) => resubmitQueued(deps, queued, action.holder ?? '', { step: STEP, ...trace }));
      deps.logger.info({ lease: action.lease, holder: action.holder, why: action.why }, 'lock freed');
      return;
    }
    case 'catch-up': {
      const data: TrainingRequested = { model: action.model, trigger: 'catchup', requestedBy: STEP, provenance: { scheduleSlot: action.slot } };
      // Send first, then remember: a lost write only means the same (deterministic) event is sent again next tick.
      await deps.sink.send(buildEvent(EventTypes.trainingRequested, { step: STEP, model: action.model, data, id: `catchup/${action.model}/${action.slot}`, ...trace }));
      await rememberCatchUp(deps.kube, action.model, action.slot);
      deps.logger.info({ model: action.model, slot: action.slot }, 'missed schedule caught up');
      return;
    }
    case 'prune':
      await deps.kube.delete(Resources.modelRun, action.run, { propagationPolicy: 'Background' });
      return;
  }
}

async function failVerify(action: Extract<WatchdogAction, { kind: 'fail-verify' }>, deps: StepDeps, trace: { traceparent?: string }): Promise<void> {
  const now = deps.clock.now().toISOString();
  // Mark first (CAS): only the tick that wins sends, and a run verified meanwhile is left alone.
  const marked = await updateRunStatus(deps.kube, action.run, (status) => {
    if (status.phase !== 'Verifying' || status.steps?.verify?.finished) return undefined;
    return { ...status, steps: { ...status.steps, verify: { ...status.steps?.verify, finished: now, outcome: 'Failed', message: action.message } } };
  });
  if (!marked?.changed) return;
  try {
    await deps.sink.send(buildEvent(EventTypes.deploymentFailed, {
      step: STEP,
      data: { model: action.model, run: action.run, release: action.release, reason: action.reason, message: action.message },
      ...trace,
    }));
  } catch (err) {
    // Undo our mark so the next tick sends again instead of losing the rollback.
    await updateRunStatus(deps.kube, action.run, (status) => {
      const verify = status.steps?.verify;
      if (status.phase !== 'Verifying' || verify?.finished !== now || verify.message !== action.message) return undefined;
      const rest = { ...verify };
      delete rest.finished; delete rest.outcome; delete rest.message;
      const steps = { ...status.steps };
      if (Object.keys(rest).length > 0) steps.verify = rest; else delete steps.verify;
      return { ...status, steps };
    }).catch(() => undefined);
    throw err;
  }
  deps.logger.warn({ run: action.run, reason: action.reason }, 'verification timed out: deployment.failed sent');
}

async function failRun(action: Extract<WatchdogAction, { kind: 'fail-run' }>, deps: StepDeps, trace: { traceparent?: string }): Promise<void> {
  const { kube } = deps;
  // Stop the work first (Background, so the Job's pod goes too); gone already is fine.
  if (action.kill.kind === 'nvj') await kube.delete(Resources.notebookValidationJob, action.kill.name, { propagationPolicy: 'Background' });
  else await kube.delete(Resources.job, action.kill.name, { propagationPolicy: 'Background' });

  // Owe the notice before ending the run: a watchdog stopped after the end still sends it next tick.
  await kube.mergePatch(Resources.modelRun, action.run, { metadata: { annotations: { [Annotations.pendingNotice]: JSON.stringify({ step: action.step, reason: action.reason }) } } });
  const now = deps.clock.now().toISOString();
  let wrote = false;
  const run = await finishRun(deps, action.run, {
    from: action.from,
    phase: 'Failed',
    message: action.message,
    step: STEP,
    patch: (status) => {
      wrote = true;
      const record = status.steps?.[action.step];
      return { ...status, step: action.step, steps: { ...status.steps, [action.step]: { ...record, finished: now, outcome: 'Failed', message: action.message } } };
    },
    ...trace,
  });
  // finishRun is a CAS: the patch ran AND the stored result is ours only if this tick ended the run.
  const ended = wrote && run?.status?.phase === 'Failed' && run.status.message === action.message && run.status.steps?.[action.step]?.finished === now;
  if (ended) {
    await sendRunFailed(deps, { model: action.model, run: action.run, step: action.step, reason: action.reason, message: action.message }, trace);
    deps.logger.warn({ run: action.run, step: action.step, reason: action.reason }, 'run failed by the watchdog');
  }
  await clearPendingNotice(kube, action.run);
}

/** `run.failed` with its deterministic id (`<run>.run.failed`): a resend is the same event, de-duplicated by notify. */
async function sendRunFailed(deps: StepDeps, data: { model: string; run: string; step: Exclude<RunStep, 'watchdog'>; reason: string; message: string }, trace: { traceparent?: string }): Promise<void> {
  await deps.sink.send(buildEvent(EventTypes.runFailed, { step: STEP, data: { ...data, message: clip(data.message, MESSAGE_MAX) }, ...trace }));
}

async function clearPendingNotice(kube: KubePort, run: string): Promise<void> {
  await kube.mergePatch(Resources.modelRun, run, { metadata: { annotations: { [Annotations.pendingNotice]: null } } });
}

/** Same identity as runtime/finish.ts gives a queued request, so both paths de-duplicate to one. */
