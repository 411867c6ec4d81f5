import type { CloudEvent } from 'cloudevents';
import { EventTypes, parseEvent } from '../events/index.ts';
import { invalid } from './errors.ts';

// A step's side of the reconcile (docs/run-lifecycle.md): `dev.mlops.run.reconcile.v1` names a run and the step
// to wake, nothing else. The step then reads the run's world from the cluster and decides as on any delivery.

export const isReconcile = (event: CloudEvent<unknown>): boolean => event.type === EventTypes.runReconcile;

/** The run a reconcile asks `step` to look at again; undefined when it is for another step. Bad data is a 400. */
export function reconcileRun(event: CloudEvent<unknown>, step: string): { run: string; model: string } | undefined {
  const parsed = parseEvent(event);
  if (!parsed.ok) throw invalid(parsed.reason);
  if (parsed.type !== EventTypes.runReconcile || parsed.data.target !== step) return undefined;
  return { run: parsed.data.run, model: parsed.data.model };
}
