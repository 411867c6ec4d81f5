import { triggersOf, type StepDeclaration } from '../runtime/declare.ts';
import type { StepDefinition } from '../runtime/step.ts';
import { declaration as driftIntake } from './drift-intake/step.ts';
import { declaration as gitIntake } from './git-intake/step.ts';
import { declaration as startTraining } from './start-training/step.ts';
import { declaration as trackTraining } from './track-training/step.ts';
import { declaration as copyGpuModel } from './copy-gpu-model/step.ts';
import { declaration as gateHealth } from './gate-health/step.ts';
import { declaration as restartPredictor } from './restart-predictor/step.ts';
import { declaration as verifyEndpoint } from './verify-endpoint/step.ts';
import { declaration as notify } from './notify/step.ts';
import { declaration as watchdog } from './watchdog/step.ts';
import { declaration as argocdSync } from './argocd-sync/step.ts';
import { declaration as storageBootstrap } from './storage-bootstrap/step.ts';

// Every step, one line each, in the order `mlops render` lists them. Each folder declares itself in its
// step.ts (runtime/declare.ts); everything below, `mlops render` and the local broker derive from this list.
// Importing it loads no step module: a process loads only its own step (one esbuild bundle per step).
export const STEPS = [
  driftIntake,
  gitIntake,
  startTraining,
  trackTraining,
  copyGpuModel,
  gateHealth,
  restartPredictor,
  verifyEndpoint,
  notify,
  watchdog,
  argocdSync,
  storageBootstrap,
] as const satisfies readonly StepDeclaration[];

type Declared = (typeof STEPS)[number];
export type StepName = Declared['name'];
/** Steps the watchdog's reconcile may wake (declared with `reconcile: true`). */
export type ReconcileTarget = Extract<Declared, { reconcile: true }>['name'];

export const STEP_NAMES: readonly StepName[] = STEPS.map((s) => s.name);

export function isStepName(name: string): name is StepName {
  return (STEP_NAMES as readonly string[]).includes(name);
}

const byStep = <T>(value: (s: Declared) => T): Record<StepName, T> => Object.fromEntries(STEPS.map((s) => [s.name, value(s)])) as Record<StepName, T>;

/** Every step's lazy module loader by name. */
export const StepLoaders: Record<StepName, () => Promise<StepDefinition>> = byStep((s) => s.load);

/** The CloudEvent types each step consumes through the broker (what its Triggers filter on, in order). */
export const Consumes: Record<StepName, readonly string[]> = byStep((s) => [...new Set(triggersOf(s).map((t) => t.filter.type))]);

/** Steps that receive raw webhooks from outside (they get a SinkBinding and a public route). */
export const INTAKE_STEPS: readonly StepName[] = STEPS.filter((s) => s.intake).map((s) => s.name);

/** Steps that take `run.reconcile` for themselves, in registry order. */
export const RECONCILE_TARGETS = STEPS.filter((s) => s.reconcile).map((s) => s.name) as readonly ReconcileTarget[];

/** Steps `mlops render --warm-steps` keeps up between the calls of one run (their declarations' `warm`). */
export const WARM_STEPS: readonly StepName[] = STEPS.filter((s) => s.warm).map((s) => s.name);
