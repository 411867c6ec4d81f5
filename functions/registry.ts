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
} as const satisfies Record<string, () => Promise<StepDefinition>>;

export type StepName = keyof typeof StepLoaders;
export const STEP_NAMES = Object.keys(StepLoaders) as StepName[];

export function isStepName(name: string): name is StepName {
  return Object.hasOwn(StepLoaders, name);
}

/** Steps that receive raw webhooks from outside (they get a SinkBinding and a public route). */
export const INTAKE_STEPS = ['drift-intake', 'git-intake'] as const satisfies readonly StepName[];
