import type { KubePort } from './kube.ts';
import { getRun, updateRunStatus } from './modelrun.ts';
import type { ModelRun, ModelRunStatus, RollbackCheck } from './resources.ts';

// Restoring a release and proving it serves (docs/run-lifecycle.md, "Rollback, verified like a promotion"). Two
// halves, each a plain function of "restore release R on this run and verify it":
// - restart-predictor records `status.rollback {release, startedAt}` (beginRestore) BEFORE it patches the
//   InferenceService back to R, so a crash in between is finished by the next delivery or the reconcile;
// - verify-endpoint probes the rollout's NEW pods of R (created since startedAt) with the probe rows R was approved
//   with (restoredProbe) and records `verified`; only then may the run end RolledBack (runtime/runstate.ts guard).

/** The release a run is restoring and has not verified yet (Verifying, rollback recorded, no verdict). */
export function restoringRelease(run: ModelRun | undefined): string | undefined {
  const status = run?.status;
  if (status?.phase !== 'Verifying' || !status.rollback || status.rollback.verified !== undefined) return undefined;
  return status.rollback.release;
}

/**
 * The status mutation that starts restoring `release` (for updateRunStatus): once, only while Verifying. It also
 * closes the rollback step record (the Job that put R's files back ended well); the run stays Verifying.
 */
export function beginRestore(status: ModelRunStatus, release: string, now: string, message: string): ModelRunStatus | undefined {
  if (status.phase !== 'Verifying' || status.rollback) return undefined;
  return {
    ...status,
    step: 'rollback',
    rollback: { release, startedAt: now },
    // A bucket model's rollback has no Job (the release is still in the bucket): started is now.
    steps: { ...status.steps, rollback: { started: now, ...status.steps?.rollback, finished: now, outcome: 'restored', message } },
  };
}

/** Write beginRestore (compare-and-swap). Returns the run as stored and whether this call recorded it. */
export async function recordRestoring(kube: KubePort, run: string, release: string, now: string, message: string): Promise<{ run: ModelRun; changed: boolean } | undefined> {
  return updateRunStatus(kube, run, (status) => beginRestore(status, release, now, message));
}

/** Write recordRestoreVerdict (compare-and-swap, once): the run as stored, whose verdict may be another delivery's. */
export async function recordRestoredVerdict(kube: KubePort, run: string, verdict: { verified: boolean; check: RollbackCheck; message: string }, now: string): Promise<ModelRun | undefined> {
  return (await updateRunStatus(kube, run, (status) => recordRestoreVerdict(status, verdict, now)))?.run;
}

/** The status mutation recording verify-endpoint's verdict on the restored release (once). */
export function recordRestoreVerdict(status: ModelRunStatus, verdict: { verified: boolean; check: RollbackCheck; message: string }, now: string): ModelRunStatus | undefined {
  const rb = status.rollback;
  if (status.phase !== 'Verifying' || !rb || rb.verified !== undefined) return undefined;
  return { ...status, rollback: { ...rb, verified: verdict.verified, check: verdict.check, finished: now, message: verdict.message } };
}

/**
 * Kubernetes creationTimestamp has whole seconds: a pod of the rollback rollout was created at or after the second
 * restoring began. Pods of R that predate it (a Serverless Revision of R still draining) are not the rollout's.
 */
export function createdForRestore(podCreated: string | Date | undefined, startedAt: string): boolean {
  if (podCreated === undefined) return false;
  const created = new Date(podCreated).getTime();
  const since = Math.floor(new Date(startedAt).getTime() / 1000) * 1000;
  return !Number.isNaN(created) && created >= since;
}

export type RestoredProbe =
  /** R's own gate record (the ModelRun that promoted it): its probe rows and the outputs it was approved with. */
  | { check: 'gate-probe'; rows: number[][]; expected: unknown[]; from: string }
  /** R has no gate record of ours (archived before the lifecycle, or its run is gone): well-formed answers only. */
  | { check: 'answers'; rows: number[][] };

const isRows = (v: unknown): v is number[][] => Array.isArray(v) && v.length > 0 && v.every((r) => Array.isArray(r) && r.length > 0 && r.every((x) => typeof x === 'number'));

/** What the restored release `release` must answer; undefined when neither R nor the run has probe rows (fail closed). */
export async function restoredProbe(kube: KubePort, run: ModelRun, release: string): Promise<RestoredProbe | undefined> {
  const approved = await getRun(kube, release);
  const s = approved?.status;
  if (approved?.spec.model === run.spec.model && s?.gate?.verdict === 'approved' && isRows(s.probe?.rows) && Array.isArray(s.probe?.expected) && s.probe.expected.length === s.probe.rows.length) {
    return { check: 'gate-probe', rows: s.probe.rows, expected: s.probe.expected, from: release };
  }
  const rows = run.status?.probe?.rows;
  return isRows(rows) ? { check: 'answers', rows } : undefined;
}
