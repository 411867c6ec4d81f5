import { z } from 'zod';
import { RunStep } from '../../events/index.ts';
import type { ReconcileTarget } from '../registry.ts';
import type { CatalogModel } from '../../runtime/catalog.ts';
import { Annotations, Labels, jobNameFor } from '../../runtime/labels.ts';
import { isTerminalPhase, type ModelRun } from '../../runtime/resources.ts';
import { releaseOfRun } from '../../runtime/modelrun.ts';
import { NotifiedAnnotationPrefix } from '../notify/decide.ts';

// The level-triggered half of the run lifecycle (docs/run-lifecycle.md): on every tick, for each unfinished run,
// look at its world — its NVJ, its Jobs, its InferenceService and the predictor's pods — and where the next step's
// inputs have been ready for a while but the run has not moved, poke the step that owns that move. The poke
// (`dev.mlops.run.reconcile.v1`) carries no facts: the step reads everything it decides on from the cluster, so
// a lost, coalesced or reordered event — or a step stopped between two effects — costs at most one tick.
// Pure: the reads are done by the caller; no I/O, no clock.


export interface JobFacts {
  /** Complete or Failed (a condition with status True). */
  done: boolean;
  /** When it finished (completionTime or the condition's lastTransitionTime). */
  doneAt?: string;
  /** When it was created. */
  createdAt?: string;
}

export interface NvjFacts {
  phase?: string;
  completionTime?: string;
}

export interface PodFacts {
  isvc: string;
  release?: string;
  ready: boolean;
  /** lastTransitionTime of the Ready condition. */
  readySince?: string;
  /** metadata.creationTimestamp: a restored release's rollout pods are those created since restoring began. */
  createdAt?: string;
  deleting: boolean;
}

export interface ReconcileWorld {
  runs: readonly ModelRun[];
  nvjs: ReadonlyMap<string, NvjFacts>;
  jobs: ReadonlyMap<string, JobFacts>;
  /** InferenceService name → the release its predictor annotation names. */
  isvcs: ReadonlyMap<string, { release?: string }>;
  pods: readonly PodFacts[];
  models: ReadonlyMap<string, CatalogModel>;
  now: Date;
  /** How long evidence must have stood before the reconcile acts on it (the event path's head start). */
  graceMs: number;
}

export type ReconcileAction =
  | { kind: 'poke'; run: string; model: string; target: ReconcileTarget; reason: string }
  /** `mlops.dev/phase` lags status.phase (its write after the status write was lost): make it agree. */
  | { kind: 'sync-label'; run: string; phase: string }
  /** A tick ended the run but stopped before sending its `run.failed` (the pending-notice annotation says so). */
  | { kind: 'resend-run-failed'; run: string; model: string; step: Exclude<RunStep, 'watchdog'>; reason: string; message: string };

const NVJ_DONE = new Set(['Succeeded', 'Failed']);

/**
 * How long after a run was verified the reconcile still checks that notify recorded its `deployment.verified`. The
 * notice is verify-endpoint's reply, sent after the Succeeded write: a verify-endpoint stopped in between, whose
 * delivery was a pod event, leaves nobody to send it (a redelivered pod event finds no Verifying run). Bounded, as a
 * route whose only channels are unconfigured never records anything.
 */
export const VERIFIED_NOTICE_WINDOW_MS = 10 * 60_000;
const VERIFIED_NOTICE = `${NotifiedAnnotationPrefix}deployment.verified`;

/** The run was verified, a route wants the notice, and notify has not recorded it: verify-endpoint sends it again. */
function owesVerifiedNotice(run: ModelRun, model: CatalogModel | undefined, now: number, graceMs: number): boolean {
  const verify = run.status?.steps?.verify;
  if (run.status?.phase !== 'Succeeded' || verify?.outcome !== 'verified' || !verify.finished) return false;
  if (run.metadata.annotations?.[VERIFIED_NOTICE] !== undefined) return false;
  if (!model?.notifications.routes.some((r) => r.events.includes('deployment.verified'))) return false;
  const age = now - new Date(verify.finished).getTime();
  return age >= graceMs && age <= VERIFIED_NOTICE_WINDOW_MS;
}

const PendingNotice = z.object({ step: RunStep.exclude(['watchdog']), reason: z.string().min(1).max(128) });

/** The run.failed a tick owes (annotation written before it ended the run), if any. */
function pendingNotice(run: ModelRun): z.infer<typeof PendingNotice> | undefined {
  const raw = run.metadata.annotations?.[Annotations.pendingNotice];
  if (!raw) return undefined;
  try {
    const parsed = PendingNotice.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export function decideReconcile(world: ReconcileWorld): ReconcileAction[] {
  const actions: ReconcileAction[] = [];
  const t = world.now.getTime();
  /** The evidence has stood for the grace period (unknown time: it has, the event path had its chance). */
  const settled = (at: string | undefined): boolean => {
    if (at === undefined) return true;
    const ms = Date.parse(at);
    return Number.isNaN(ms) || t - ms >= world.graceMs;
  };

  for (const run of [...world.runs].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))) {
    const name = run.metadata.name ?? '';
    const status = run.status ?? {};
    const phase = status.phase;
    if (phase && run.metadata.labels?.[Labels.phase] !== phase) actions.push({ kind: 'sync-label', run: name, phase });
    const owed = pendingNotice(run);
    if (owed && phase === 'Failed') actions.push({ kind: 'resend-run-failed', run: name, model: run.spec.model, step: owed.step, reason: owed.reason, message: status.message ?? `deadline exceeded in ${owed.step}` });
    if (owesVerifiedNotice(run, world.models.get(run.spec.model), t, world.graceMs)) {
      actions.push({ kind: 'poke', run: name, model: run.spec.model, target: 'verify-endpoint', reason: 'deployment.verified not recorded by notify' });
    }
    if (isTerminalPhase(phase)) continue;
    const model = world.models.get(run.spec.model);
    if (!model) continue;
    if (!phase || phase === 'Pending') {
      // Created, never started (a start-training delivery stopped before the NVJ): finish it from the run's spec.
      const created = run.metadata.creationTimestamp;
      // A manual rollback (docs/day2.md) is restart-predictor's to start.
      const target: ReconcileTarget = run.spec.trigger === 'manual-rollback' ? 'restart-predictor' : 'start-training';
      if (settled(created === undefined ? undefined : new Date(created).toISOString())) actions.push({ kind: 'poke', run: name, model: run.spec.model, target, reason: 'run not started' });
      continue;
    }
    const steps = status.steps ?? {};
    const poke = (target: ReconcileTarget, reason: string): void => { actions.push({ kind: 'poke', run: name, model: run.spec.model, target, reason }); };
    /** A step whose Job is `<run>-<suffix>`: start it when its inputs stood long enough, or conclude it when the Job ended. */
    const jobStep = (target: ReconcileTarget, suffix: 'copy' | 'gate' | 'promote' | 'rollback', record: { started?: string; finished?: string } | undefined, inputsSince: string | undefined): void => {
      if (record?.finished) return;
      const job = world.jobs.get(jobNameFor(name, suffix));
      if (!job) {
        if (!record?.started && settled(inputsSince)) poke(target, `${suffix} not started`);
        return;
      }
      if (job.done && settled(job.doneAt)) poke(target, `${suffix} Job ended`);
    };

    switch (phase) {
      case 'Training': {
        const nvj = world.nvjs.get(name);
        if (nvj?.phase && NVJ_DONE.has(nvj.phase) && !steps.training?.finished && settled(nvj.completionTime)) poke('track-training', `NVJ ${nvj.phase}`);
        break;
      }
      case 'Copying':
        jobStep('copy-gpu-model', 'copy', steps.copy, steps.training?.finished);
        break;
      case 'Gating':
        jobStep('gate-health', 'gate', steps.gate, steps.copy?.finished ?? steps.training?.finished);
        break;
      case 'Promoting':
        jobStep('restart-predictor', 'promote', steps.promote, run.spec.trigger === 'manual-rollback' ? status.startedAt : steps.gate?.finished);
        break;
      case 'Verifying': {
        const verify = steps.verify;
        if (!verify?.finished) {
          const isvc = world.isvcs.get(model.inferenceService);
          const release = releaseOfRun(run);
          if (isvc && isvc.release !== release) {
            // Verifying is recorded before the predictor is patched: a restart stopped in between.
            if (settled(steps.promote?.finished)) poke('restart-predictor', 'predictor not rolled to the release');
            break;
          }
          const fresh = world.pods.filter((p) => p.isvc === model.inferenceService && p.release === release && p.ready && !p.deleting);
          if (fresh.length > 0 && fresh.every((p) => settled(p.readySince))) poke('verify-endpoint', `${fresh.length} new pod(s) Ready`);
          break;
        }
        if (verify.outcome === 'verified') {
          // The verdict is recorded but the run did not end (stopped between the record and the transition).
          if (settled(verify.finished)) poke('verify-endpoint', 'verified but not ended');
          break;
        }
        const rb = status.rollback;
        if (rb) {
          // Restoring a release (runtime/rollback.ts): the patch back, then verify-endpoint's verdict on the rollout's new pods.
          if (rb.verified !== undefined) {
            if (settled(rb.finished)) poke('verify-endpoint', 'restored release checked but the run did not end');
            break;
          }
          const isvc = world.isvcs.get(model.inferenceService);
          if (isvc && isvc.release !== rb.release) {
            if (settled(rb.startedAt)) poke('restart-predictor', `predictor not rolled back to ${rb.release}`);
            break;
          }
          const since = Math.floor(Date.parse(rb.startedAt) / 1000) * 1000;
          const restored = world.pods.filter((p) => p.isvc === model.inferenceService && p.release === rb.release && !p.deleting && (p.createdAt === undefined || Date.parse(p.createdAt) >= since));
          if (restored.length > 0 && restored.every((p) => p.ready && settled(p.readySince))) poke('verify-endpoint', `${restored.length} restored pod(s) Ready`);
          break;
        }
        // Verification failed: the rollback is restart-predictor's.
        jobStep('restart-predictor', 'rollback', steps.rollback, verify.finished);
        break;
      }
    }
  }
  return actions;
}
