import type { CloudEvent } from 'cloudevents';
import { EventTypes, MESSAGE_MAX, buildEvent, clip } from '../../events/index.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { finishRun } from '../../runtime/finish.ts';
import { updateRunStatus } from '../../runtime/modelrun.ts';
import { recordRestoredVerdict } from '../../runtime/rollback.ts';
import type { ModelRun } from '../../runtime/resources.ts';
import type { StepDeps } from '../../runtime/step.ts';
import { recordedReply, type ProbeOutcome, type ProbeTarget, type VerifyAction } from './decide.ts';

export const STEP = 'verify-endpoint';

export interface ProbeOptions {
  /** Per-request timeout. */
  timeoutMs?: number;
  /** Attempts for transport errors (a connection refused while the pod settles); HTTP answers are final. */
  attempts?: number;
  backoffMs?: number;
}

/** POST the probe body to every target, in parallel; transport errors get a couple of quick retries. */
export async function probeAll(fetchFn: typeof fetch, targets: ProbeTarget[], body: unknown, opts: ProbeOptions = {}): Promise<ProbeOutcome[]> {
  return Promise.all(targets.map((t) => probeOne(fetchFn, t, JSON.stringify(body), opts)));
}

async function probeOne(fetchFn: typeof fetch, target: ProbeTarget, body: string, opts: ProbeOptions): Promise<ProbeOutcome> {
  const attempts = opts.attempts ?? 3;
  let lastError = '';
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, (opts.backoffMs ?? 200) * i));
    try {
      const res = await fetchFn(target.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = JSON.parse(text) as unknown; } catch { /* keep the text: error pages are often plain */ }
      return { pod: target.pod, kind: 'answer', status: res.status, body: parsed };
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      lastError = `${(err as Error).message}${cause?.code ? ` (${cause.code})` : cause?.message ? ` (${cause.message})` : ''}`;
    }
  }
  return { pod: target.pod, kind: 'transport', error: `no answer from ${target.url} after ${attempts} attempts: ${lastError}` };
}

export interface EffectContext {
  deps: StepDeps;
  model: CatalogModel;
  runName: string;
  /** The release being verified: the run's own, or the kept one a manual rollback serves again (docs/day2.md). */
  release?: string;
  traceparent?: string;
}

/** Records the verdict (compare-and-swap, once per run) and returns the reply; a lost race replies what won. */
export async function runVerifyEffects(actions: VerifyAction[], ctx: EffectContext): Promise<CloudEvent<unknown> | undefined> {
  const { deps, runName } = ctx;
  const trace = ctx.traceparent ? { traceparent: ctx.traceparent } : {};
  const now = deps.clock.now().toISOString();
  let out: CloudEvent<unknown> | undefined;
  // When another delivery recorded a verdict first, answer with that one instead of ours.
  let winner: VerifyAction | undefined;
  let verifiedAt = now;

  const record = async (outcome: string, message: string): Promise<ModelRun | undefined> => {
    const result = await updateRunStatus(deps.kube, runName, (status) => {
      if (status.steps?.verify?.finished || status.phase !== 'Verifying') return undefined;
      const started = status.steps?.verify?.started ?? status.steps?.promote?.finished ?? now;
      return { ...status, step: 'verify', steps: { ...status.steps, verify: { started, finished: now, outcome, message } } };
    });
    const run = result?.run;
    if (run && run.status?.steps?.verify?.outcome !== outcome) winner = recordedReply(run) ?? { kind: 'ignore', reason: 'run left Verifying meanwhile' };
    if (run?.status?.steps?.verify?.finished) verifiedAt = new Date(run.status.steps.verify.finished).toISOString();
    return run;
  };

  for (const action of actions) {
    switch (action.kind) {
      case 'ignore':
      case 'wait':
        deps.logger.debug({ reason: action.reason }, action.kind === 'wait' ? 'waiting for new pods' : 'ignored');
        break;
      case 'probe':
        throw new Error('probe actions are run by the step before judging'); // a bug, retried as 503
      case 'record-verified': {
        const run = await record('verified', action.message);
        if (!winner && run) {
          await finishRun(deps, runName, { from: 'Verifying', phase: 'Succeeded', step: STEP, message: `release ${ctx.release ?? runName} verified on ${action.pods.length} new pod(s)`, ...trace });
        }
        break;
      }
      case 'finish-verified':
        await finishRun(deps, runName, { from: 'Verifying', phase: 'Succeeded', step: STEP, message: `release ${ctx.release ?? runName} verified on ${action.pods} new pod(s)`, ...trace });
        break;
      case 'record-failed':
        // The phase stays Verifying: restart-predictor ends the run once it has rolled back (or cannot).
        await record(action.reason, action.message);
        break;
      case 'conclude-restore':
        await concludeRestore(action, ctx, now, trace);
        break;
      case 'reply-verified':
      case 'reply-failed': {
        const chosen = winner ?? action;
        out = eventFor(chosen, ctx, chosen.kind === 'reply-verified' ? chosen.verifiedAt ?? verifiedAt : verifiedAt, trace);
        break;
      }
    }
  }
  return out;
}

/** The message a run ends with once its restored release was checked (docs/run-lifecycle.md). */
export function restoreMessage(run: string, release: string, verified: boolean, detail: string, why: string | undefined): string {
  return verified
    ? clip(`release ${run} failed verification${why ? ` (${why})` : ''}; rolled back to ${release}, ${detail}`, MESSAGE_MAX)
    : clip(`ROLLBACK UNVERIFIED: ${run} failed verification and ${release} was restored, but ${release} does not answer its probe rows on the rollback's new pods (${detail}). `
      + `${release} is what the predictor is set to now; nothing else was changed automatically: check the predictor and roll back or forward by hand.`, MESSAGE_MAX);
}

/**
 * Record the verdict on the restored release (once; a verdict recorded first by another delivery wins), announce it,
 * then end the run. The notice is sent BEFORE the terminal write: pod events stop reaching a run once it has ended,
 * so a step stopped after the write would otherwise never send it; a resend has the same id (receivers de-duplicate).
 */
async function concludeRestore(action: Extract<VerifyAction, { kind: 'conclude-restore' }>, ctx: EffectContext, now: string, trace: { traceparent?: string }): Promise<void> {
  const { deps, runName, model } = ctx;
  const run = await recordRestoredVerdict(deps.kube, runName, { verified: action.verified, check: action.check, message: action.message }, now);
  const rb = run?.status?.rollback;
  if (!run || run.status?.phase !== 'Verifying' || !rb || rb.verified === undefined) return;
  const message = restoreMessage(runName, rb.release, rb.verified, rb.message ?? action.message, run.status.steps?.verify?.message);
  if (rb.verified) {
    await deps.sink.send(buildEvent(EventTypes.deploymentRolledback, {
      step: STEP, data: { model: model.name, run: runName, failedRelease: runName, restoredRelease: rb.release, message }, ...trace,
    }));
    await finishRun(deps, runName, {
      from: 'Verifying', phase: 'RolledBack', step: STEP, message, ...trace,
      patch: (status) => ({ ...status, step: 'rollback', release: { ...status.release, restored: rb.release } }),
    });
  } else {
    deps.logger.error({ run: runName, release: rb.release }, 'restored release failed its probe: run Failed, nothing else changed');
    await deps.sink.send(buildEvent(EventTypes.runFailed, {
      step: STEP, data: { model: model.name, run: runName, step: 'rollback', reason: 'rollback-unverified', message }, ...trace,
    }));
    await finishRun(deps, runName, { from: 'Verifying', phase: 'Failed', step: STEP, message, ...trace, patch: (status) => ({ ...status, step: 'rollback' }) });
  }
}

function eventFor(action: VerifyAction, ctx: EffectContext, verifiedAt: string, trace: { traceparent?: string }): CloudEvent<unknown> | undefined {
  const { model, runName } = ctx;
  if (action.kind === 'reply-verified') {
    return buildEvent(EventTypes.deploymentVerified, {
      step: STEP, data: { model: model.name, run: runName, release: ctx.release ?? runName, verifiedAt, pods: action.pods, matched: action.matched }, ...trace,
    });
  }
  if (action.kind === 'reply-failed') {
    return buildEvent(EventTypes.deploymentFailed, {
      step: STEP, data: { model: model.name, run: runName, release: ctx.release ?? runName, reason: action.reason, message: action.message.slice(0, 4000) }, ...trace,
    });
  }
  return undefined;
}
