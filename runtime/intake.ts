import type { CloudEvent } from 'cloudevents';
import { buildEvent, EventTypes, EventValidationError, type TrainingRequested } from '../events/index.ts';
import { permanent, retryable } from './errors.ts';
import type { StepDeps } from './step.ts';

// Sends the training requests decide asked for to K_SINK (the broker). Every id is deterministic, so a
// retried webhook re-sends the same events and the broker's receivers de-duplicate them.

export const SEND_CONCURRENCY = 16;

export interface TrainingRequest { id: string; data: TrainingRequested }

/**
 * Builds every event first (so an invalid one sends nothing), then sends them with bounded parallelism.
 * The webhook's W3C `traceparent` header, when well-formed, is carried on every event.
 */
export async function sendTrainingRequests(step: string, requests: readonly TrainingRequest[], deps: StepDeps, traceparent?: string): Promise<string[]> {
  const time = deps.clock.now().toISOString();
  const events = requests.map((r) => {
    try {
      return buildEvent(EventTypes.trainingRequested, { step, id: r.id, data: r.data, time, traceparent });
    } catch (err) {
      if (err instanceof EventValidationError) throw permanent(err.message);
      throw err;
    }
  });
  const failures: unknown[] = [];
  await forEachLimited(events, SEND_CONCURRENCY, async (event: CloudEvent<unknown>) => {
    try {
      await deps.sink.send(event);
      deps.logger.info({ ceId: event.id, model: (event as unknown as { model?: string }).model }, 'training requested');
    } catch (err) {
      failures.push(err);
    }
  });
  if (failures.length > 0) {
    // Any broker failure, even a missing K_SINK, is worth a retry by the webhook sender once fixed.
    const first = failures[0] instanceof Error ? failures[0].message : String(failures[0]);
    throw retryable(`broker did not take ${failures.length} of ${events.length} events: ${first}`, failures[0]);
  }
  return events.map((e) => e.id);
}

/** Runs `fn` over `items` with at most `limit` in flight; waits for all (no promise left dangling). */
export async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
