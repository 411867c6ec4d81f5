import { EventTypes, SOURCE_PREFIX, sourceOf, type EventType } from '../events/index.ts';
import { permanent } from './errors.ts';
import type { ModelRun } from './resources.ts';
import { STEPS } from '../functions/registry.ts';

// Defence in depth for the events that change what is served (docs/security.md): each is honoured only from
// the step that emits it (its CloudEvent `source`) and only when the run's own record agrees. `source` is not
// authentication: anything that can post to the Broker can write any source. What stops a forged event is
// the record check (the ModelRun is written by our steps under their Roles) and, with `mlops render
// --sender-auth`, Knative's EventPolicies.

/** The events that change what is served. */
export const GuardedTypes = [
  EventTypes.trainingSucceeded, EventTypes.modelCopied, EventTypes.modelApproved, EventTypes.predictorRestarted, EventTypes.deploymentFailed,
] as const satisfies readonly EventType[];
export type GuardedType = (typeof GuardedTypes)[number];

/**
 * The steps allowed to emit each served-state event: those whose declaration lists it in `emits`
 * (functions/<step>/step.ts). The watchdog emits only deployment.failed (a verification past its deadline); its
 * reconcile never re-sends these events, it sends `run.reconcile`, which carries no facts (docs/run-lifecycle.md).
 */
export const Emitters: Record<GuardedType, readonly string[]> = Object.fromEntries(GuardedTypes.map((type) => [type, emittersOf(type)])) as { [K in GuardedType]: readonly string[] };

function emittersOf(type: GuardedType): readonly string[] {
  return STEPS.filter((s) => (s.emits as readonly string[]).includes(type)).map((s) => s.name);
}

export function isGuarded(type: string): type is GuardedType {
  return (GuardedTypes as readonly string[]).includes(type);
}

/** 422 unless `source` is `/model-lifecycle/<step>` of a step allowed to emit `type`. */
export function assertSender(event: { type: string; source: string }): void {
  if (!isGuarded(event.type)) return;
  const allowed: readonly string[] = Emitters[event.type];
  const step = event.source.startsWith(SOURCE_PREFIX) ? event.source.slice(SOURCE_PREFIX.length) : undefined;
  if (step !== undefined && allowed.includes(step)) return;
  const source = event.source.length > 120 ? `${event.source.slice(0, 120)}…` : event.source;
  throw permanent(`refused by rule sender: ${event.type} is honoured only from ${allowed.map(sourceOf).join(', ')}, not from "${source}"`);
}

/** The fields of a served-state event the run's record is compared with. */
export interface GuardedData { model: string; run: string; profile?: string; release?: string }

/**
 * 422 unless the ModelRun's record says what the event claims: its model, and the outcome of the step that
 * emits the event (each emitter records its outcome before it replies, so a genuine event always agrees).
 */
export function assertRecordAgrees(type: GuardedType, data: GuardedData, run: ModelRun): void {
  const problem = recordProblem(type, data, run);
  if (problem) throw permanent(`refused by rule record: ${type} for run ${data.run} disagrees with the ModelRun: ${problem}`);
}

export function recordProblem(type: GuardedType, data: GuardedData, run: ModelRun): string | undefined {
  if (run.spec.model !== data.model) return `the run is of model ${run.spec.model}, not ${data.model}`;
  const steps = run.status?.steps ?? {};
  const said = (step: string, outcome: string | undefined): string => `its ${step} record says ${outcome ?? 'nothing yet'}`;
  switch (type) {
    case EventTypes.trainingSucceeded:
      if (steps.training?.outcome !== 'Succeeded') return said('training', steps.training?.outcome);
      if (data.profile !== undefined && data.profile !== run.spec.profile) return `the run's profile is ${run.spec.profile}, not ${data.profile}`;
      return undefined;
    case EventTypes.modelCopied:
      return steps.copy?.outcome === 'copied' ? undefined : said('copy', steps.copy?.outcome);
    case EventTypes.modelApproved:
      return steps.gate?.outcome === 'approved' ? undefined : said('gate', steps.gate?.outcome);
    case EventTypes.predictorRestarted:
      if (steps.promote?.outcome !== 'promoted') return said('promote', steps.promote?.outcome);
      if (data.release !== undefined && run.status?.release?.promoted !== data.release) return `it promoted ${run.status?.release?.promoted ?? 'nothing'}, not ${data.release}`;
      return undefined;
    case EventTypes.deploymentFailed:
      // verify-endpoint and the watchdog record a failed verification (any outcome but `verified`) first.
      if (!steps.verify?.finished || steps.verify.outcome === 'verified') return said('verify', steps.verify?.finished ? steps.verify.outcome : undefined);
      return undefined;
  }
}
