import type { CloudEvent } from 'cloudevents';

// W3C trace context across a run: the `traceparent` extension of the event that caused a step, or, for steps
// woken by cluster updates (Job and Pod events carry none), the one recorded on the ModelRun when it started.

export const TRACE_ANNOTATION = 'mlops.dev/traceparent';
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

export function traceparentOf(event: CloudEvent<unknown>): string | undefined {
  const value = (event as unknown as Record<string, unknown>).traceparent;
  return typeof value === 'string' && TRACEPARENT.test(value) ? value : undefined;
}

/** `{ traceparent }` to spread into buildEvent options, or `{}` when there is none. */
export function traceOf(event: CloudEvent<unknown>, run?: { metadata?: { annotations?: Record<string, string> } }): { traceparent?: string } {
  const fromEvent = traceparentOf(event);
  if (fromEvent) return { traceparent: fromEvent };
  const recorded = run?.metadata?.annotations?.[TRACE_ANNOTATION];
  return recorded && TRACEPARENT.test(recorded) ? { traceparent: recorded } : {};
}
