import { createHash } from 'node:crypto';
import type { StepName } from '../events/catalog.ts';

// Names and labels of everything we create (docs/design.md, Kubernetes contract). Deterministic names are what make
// every effect idempotent: the same request always maps to the same ModelRun, NVJ, Job and Lease.

export const MANAGER = 'model-lifecycle';

export const Labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  partOf: 'app.kubernetes.io/part-of',
  model: 'mlops.dev/model',
  run: 'mlops.dev/run',
  step: 'mlops.dev/step',
  phase: 'mlops.dev/phase',
  trigger: 'mlops.dev/trigger',
  retrainModel: 'mlops.dev/retrain-model',
  notificationType: 'mlops.dev/notification-type',
} as const;

export const Annotations = {
  modelRelease: 'mlops.dev/model-release',
  queuedRequest: 'mlops.dev/queued-request',
  idempotencyKey: 'mlops.dev/idempotency-key',
  /**
   * The watchdog is about to end the run and owes `run.failed` (`{"step","reason"}`): written before the run
   * ends, removed once sent, so a watchdog stopped in between sends it on the next tick (docs/run-lifecycle.md).
   */
  pendingNotice: 'mlops.dev/pending-notice',
} as const;

/** `mlops.dev/step` on what a run creates: its steps' NVJ and Jobs, and the lock. */
export type StepLabel = StepName | 'lock';

/** Selects our Jobs of the given steps (the ApiServerSources that watch them). */
export const jobsOf = (steps: readonly string[]): { matchLabels: Record<string, string>; matchExpressions: Array<{ key: string; operator: 'In'; values: string[] }> } => ({
  matchLabels: { [Labels.managedBy]: MANAGER },
  matchExpressions: [{ key: Labels.step, operator: 'In', values: [...steps] }],
});

export function runLabels(model: string, run: string, step: StepLabel): Record<string, string> {
  return { [Labels.managedBy]: MANAGER, [Labels.model]: model, [Labels.run]: run, [Labels.step]: step };
}

/** `<model>-<10 hex of sha256(key)>`: ≤ 51 chars for a ≤ 40-char model, so `<run>-promote` stays ≤ 63. */
export function runNameFor(model: string, idempotencyKey: string): string {
  return `${model}-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 10)}`;
}

/** Where a run's model lands on a PVC: the unchanged notebook writes /mnt/models/<model>/model.pkl under subPath .runs/<run>. */
export const stagedArtifactPath = (run: string, model: string): string => `.runs/${run}/${model}/model.pkl`;

export const lockNameFor = (model: string): string => `model-lock-${model}`;
export const jobNameFor = (run: string, step: 'copy' | 'gate' | 'promote' | 'rollback'): string => `${run}-${step}`;

export interface OwnerRef { apiVersion: string; kind: string; name: string; uid: string; controller: boolean; blockOwnerDeletion: boolean }

export function modelRunOwnerRef(run: { metadata?: { name?: string; uid?: string } }): OwnerRef[] {
  const name = run.metadata?.name;
  const uid = run.metadata?.uid;
  if (!name || !uid) return [];
  return [{ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name, uid, controller: true, blockOwnerDeletion: true }];
}

/** The label KServe puts on every predictor pod: the InferenceService's name. */
export const KSERVE_ISVC_LABEL = 'serving.kserve.io/inferenceservice';
