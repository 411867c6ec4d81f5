import type { StepDefinition } from '../runtime/step.ts';

// Every step by its Knative Service name. Lazy so one process (and one esbuild bundle) loads only its step.
export const StepLoaders = {
  'drift-intake': async () => (await import('./drift-intake/index.ts')).step,
  'git-intake': async () => (await import('./git-intake/index.ts')).step,
  'start-training': async () => (await import('./start-training/index.ts')).step,
  'track-training': async () => (await import('./track-training/index.ts')).step,
  'copy-gpu-model': async () => (await import('./copy-gpu-model/index.ts')).step,
  'gate-health': async () => (await import('./gate-health/index.ts')).step,
  'restart-predictor': async () => (await import('./restart-predictor/index.ts')).step,
  'verify-endpoint': async () => (await import('./verify-endpoint/index.ts')).step,
  notify: async () => (await import('./notify/index.ts')).step,
  watchdog: async () => (await import('./watchdog/index.ts')).step,
  'argocd-sync': async () => (await import('./argocd-sync/index.ts')).step,
  'storage-bootstrap': async () => (await import('./storage-bootstrap/index.ts')).step,
} as const satisfies Record<string, () => Promise<StepDefinition>>;

export type StepName = keyof typeof StepLoaders;
export const STEP_NAMES = Object.keys(StepLoaders) as StepName[];

export function isStepName(name: string): name is StepName {
  return Object.hasOwn(StepLoaders, name);
}

/** The CloudEvent types each step consumes through the broker (the rendered Triggers must cover exactly these). */
export const Consumes: Record<StepName, readonly string[]> = {
  'drift-intake': [],
  'git-intake': [],
  'start-training': ['dev.mlops.run.reconcile.v1', 'dev.mlops.training.requested.v1', 'dev.knative.sources.ping', 'dev.tekton.event.pipelinerun.successful.v1'],
  'track-training': ['dev.mlops.run.reconcile.v1', 'dev.knative.apiserver.resource.update'],
  'copy-gpu-model': ['dev.mlops.run.reconcile.v1', 'dev.mlops.training.succeeded.v1', 'dev.knative.apiserver.resource.update'],
  'gate-health': ['dev.mlops.run.reconcile.v1', 'dev.mlops.training.succeeded.v1', 'dev.mlops.model.copied.v1', 'dev.knative.apiserver.resource.update'],
  'restart-predictor': ['dev.mlops.run.reconcile.v1', 'dev.mlops.model.approved.v1', 'dev.mlops.deployment.failed.v1', 'dev.knative.apiserver.resource.update'],
  'verify-endpoint': ['dev.mlops.run.reconcile.v1', 'dev.mlops.predictor.restarted.v1', 'dev.knative.apiserver.resource.add', 'dev.knative.apiserver.resource.update',
    'dev.knative.apiserver.resource.delete'],
  notify: ['dev.mlops.training.failed.v1', 'dev.mlops.training.skipped.v1', 'dev.mlops.run.failed.v1', 'dev.mlops.model.rejected.v1',
    'dev.mlops.deployment.failed.v1', 'dev.mlops.deployment.rolledback.v1', 'dev.mlops.deployment.verified.v1', 'dev.mlops.storage.failed.v1'],
  watchdog: ['dev.knative.sources.ping'],
  'argocd-sync': ['dev.knative.apiserver.resource.add', 'dev.knative.apiserver.resource.update', 'dev.knative.apiserver.resource.delete'],
  'storage-bootstrap': ['dev.mlops.storage.bootstrap.requested.v1', 'dev.knative.sources.ping', 'dev.knative.apiserver.ref.add', 'dev.knative.apiserver.ref.update'],
};

/** Steps that receive raw webhooks from outside (they get a SinkBinding and a public route). */
export const INTAKE_STEPS = ['drift-intake', 'git-intake'] as const satisfies readonly StepName[];
