import { ConflictError, type KubePort } from './kube.ts';
import { Resources, isTerminalPhase, type ModelRun, type ModelRunPhase, type ModelRunStatus, type StepName } from './resources.ts';

// Reads and compare-and-swap writes of a ModelRun's status records (never its phase: runtime/runstate.ts). Every step decides on the status it read and
// writes back only if nobody changed the run meanwhile (JSON patch `test` on resourceVersion), so two
// deliveries of one event can never both advance a run.

export async function getRun(kube: KubePort, name: string): Promise<ModelRun | undefined> {
  return kube.get<ModelRun & Record<string, unknown>>(Resources.modelRun, name);
}

export type StatusMutation = (status: ModelRunStatus, run: ModelRun) => ModelRunStatus | undefined;

/**
 * Apply `mutate` to the run's current status and write it back atomically. Returns the updated run, or
 * undefined when `mutate` chose not to change anything (or the run is gone). Retries lost races a few times.
 */
export async function updateRunStatus(kube: KubePort, name: string, mutate: StatusMutation, attempts = 5): Promise<{ run: ModelRun; changed: boolean } | undefined> {
  for (let i = 0; i < attempts; i++) {
    const run = await getRun(kube, name);
    if (!run) return undefined;
    const next = mutate(structuredClone(run.status ?? {}), run);
    if (!next) return { run, changed: false };
    // Phase changes go through the state machine only (runtime/runstate.ts `transition`).
    if (next.phase !== run.status?.phase) throw new Error(`updateRunStatus may not change the phase (${run.status?.phase ?? 'none'} → ${next.phase ?? 'none'}); use transition()`);
    const rv = run.metadata.resourceVersion;
    try {
      const updated = await kube.jsonPatch<ModelRun & Record<string, unknown>>(Resources.modelRun, name, [
        { op: 'test', path: '/metadata/resourceVersion', value: rv },
        { op: 'add', path: '/status', value: next },
      ], { subresource: 'status' });
      if (!updated) return undefined;
      return { run: updated, changed: true };
    } catch (err) {
      if (!(err instanceof ConflictError) || i === attempts - 1) throw err;
    }
  }
  return undefined;
}

/**
 * Record that a step's Job was started (once): `steps.<step>.started/job` and the step deadline, only while the
 * run is still in `phase` and the step has not started.
 */
export async function recordStepStarted(kube: KubePort, run: string, opts: { step: StepName; phase: ModelRunPhase; job: string; deadline: string; now: string }): Promise<void> {
  await updateRunStatus(kube, run, (status) => {
    if (status.steps?.[opts.step]?.started || status.phase !== opts.phase) return undefined;
    return {
      ...status,
      step: opts.step,
      steps: { ...status.steps, [opts.step]: { started: opts.now, job: opts.job } },
      deadlines: { ...status.deadlines, step: opts.deadline },
    };
  });
}

export function isRunTerminal(run: ModelRun | undefined): boolean {
  return isTerminalPhase(run?.status?.phase);
}

/**
 * A run that put its release into serving: Succeeded, and not a run that ended without promoting because the model's
 * release was pinned (docs/day2.md). Served release, freshness and the drift cooldown read only these.
 */
export function isServingRun(run: ModelRun | undefined): boolean {
  return run?.status?.phase === 'Succeeded' && run.status.release?.pinned === undefined;
}

/**
 * The release a run puts into serving: what it recorded as promoted, else the kept release a manual rollback asks
 * for (docs/day2.md), else the run's own name (a trained run's release is named after it).
 */
export function releaseOfRun(run: Pick<ModelRun, 'spec' | 'status' | 'metadata'>): string {
  return run.status?.release?.promoted ?? (run.spec.trigger === 'manual-rollback' ? run.spec.rollback?.release : undefined) ?? run.metadata.name ?? '';
}

export const nowIso = (d: Date): string => d.toISOString();
