// The skip path: a training.requested for a model whose lock a run holds is answered training.skipped.
import { CloudEvent } from 'cloudevents';
import { EventTypes } from '../events/index.ts';

export const SKIP_MODEL = 'anomaly-detector';

let sequence = 0;

/** A fresh training.requested (new id each time, so no reply is a cached one). */
export function requestEvent(): CloudEvent<unknown> {
  sequence += 1;
  return new CloudEvent({
    type: EventTypes.trainingRequested, source: '/bench', id: `bench-${process.pid}-${sequence}`, datacontenttype: 'application/json',
    data: { model: SKIP_MODEL, trigger: 'manual', requestedBy: 'bench' },
  });
}

/** An event type start-training does not handle: answered 204 without any API call (the HTTP host alone). */
export function unhandledEvent(): CloudEvent<unknown> {
  sequence += 1;
  return new CloudEvent({ type: 'dev.mlops.bench.unhandled.v1', source: '/bench', id: `bench-${process.pid}-${sequence}`, datacontenttype: 'application/json', data: {} });
}
