import type { CloudEvent } from 'cloudevents';
import {
  EventTypes, PING_EVENT_TYPE, TektonPipelineRunEventTypes, TrainingRequested, isTektonEventType,
  isTektonPipelineRunEventType, parseEvent, parsePingSource, parseTektonEvent, scheduleSlot,
} from '../../events/index.ts';
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { findModel } from '../../runtime/catalog.ts';
import { invalid, permanent } from '../../runtime/errors.ts';
import { Labels } from '../../runtime/labels.ts';
import { traceparentOf } from '../../runtime/trace.ts';
import { checkOverrides, effectiveSender } from './policy.ts';

// Turns each accepted input into one normalised request plus the idempotency key derived from the
// source's own identity, so every redelivery of the same thing maps to the same ModelRun name.

export interface StartRequest {
  data: TrainingRequested;
  idempotencyKey: string;
  model: CatalogModel;
  /** The CloudEvent that carried the request; kept on a queued request so its identity survives re-submission. */
  origin: { source: string; id: string };
  traceparent?: string;
}

export type Normalised = { kind: 'request'; request: StartRequest } | { kind: 'ignore'; reason: string };

export function normalise(event: CloudEvent<unknown>, catalog: Catalog): Normalised {
  const traceparent = traceparentOf(event);
  const origin = { source: event.source, id: event.id };
  const withTrace = (r: Omit<StartRequest, 'traceparent' | 'origin'>): Normalised =>
    ({ kind: 'request', request: traceparent ? { ...r, origin, traceparent } : { ...r, origin } });

  if (event.type === EventTypes.trainingRequested) {
    const parsed = parseEvent(event);
    if (!parsed.ok) throw invalid(parsed.reason);
    const data = parsed.data as TrainingRequested;
    const model = requireModel(catalog, data.model);
    // A refused override is a rule, not malformed input: 422 naming the rule (docs/security.md).
    const verdict = checkOverrides(data, effectiveSender(event.source, data), model);
    if (!verdict.ok) throw permanent(verdict.message);
    return withTrace({ data, model, idempotencyKey: requestKey(data, event.source, event.id) });
  }

  if (event.type === PING_EVENT_TYPE) {
    const tick = parsePingSource(event);
    if (!tick.ok) throw invalid(tick.reason);
    const model = requireModel(catalog, tick.value.model);
    if (!model.schedule) throw permanent(`model ${model.name} has no schedule in the catalog; remove its PingSource`);
    let slot: string;
    try {
      slot = scheduleSlot(tick.value.time ?? new Date().toISOString(), model.schedule.cron, model.schedule.timezone);
    } catch (err) {
      throw invalid(`cannot place the tick in the schedule: ${(err as Error).message}`);
    }
    const data: TrainingRequested = {
      model: model.name, trigger: 'schedule', requestedBy: 'pingsource',
      provenance: { scheduleSlot: slot, pingSource: tick.value.source },
    };
    return withTrace({ data, model, idempotencyKey: scheduleKey(model.name, slot) });
  }

  if (event.type === TektonPipelineRunEventTypes.successful) {
    const parsed = parseTektonEvent(event);
    if (!parsed.ok) throw invalid(parsed.reason);
    const pr = parsed.value.pipelineRun;
    const modelName = pr.metadata.labels?.[Labels.retrainModel];
    if (!modelName) return { kind: 'ignore', reason: `ignored: PipelineRun ${pr.metadata.name} has no ${Labels.retrainModel} label` };
    const model = requireModel(catalog, modelName);
    const data: TrainingRequested = {
      model: model.name, trigger: 'pipeline', requestedBy: 'tekton',
      provenance: { pipelineRun: pr.metadata.name ?? '', pipelineRunUid: pr.metadata.uid },
    };
    const checked = TrainingRequested.safeParse(data);
    if (!checked.success) throw invalid(`PipelineRun does not make a valid request: ${checked.error.issues[0]?.message ?? ''}`);
    return withTrace({ data: checked.data, model, idempotencyKey: `pipeline/${pr.metadata.uid}` });
  }

  // Tekton sends every state of every run; only a successful PipelineRun is a trigger.
  if (isTektonPipelineRunEventType(event.type)) return { kind: 'ignore', reason: `ignored: not a successful run (${event.type})` };
  if (isTektonEventType(event.type)) return { kind: 'ignore', reason: `ignored: a Tekton event not about a PipelineRun (${event.type})` };
  return { kind: 'ignore', reason: `event type ${event.type} is not handled by start-training` };
}

function requireModel(catalog: Catalog, name: string): CatalogModel {
  const model = findModel(catalog, name);
  if (!model) throw permanent(`unknown model "${name}": not in the catalog`);
  if (!model.enabled) throw permanent(`model "${name}" is disabled in the catalog`);
  return model;
}

export const scheduleKey = (model: string, slot: string): string => `schedule/${model}/${slot}`;

/** The idempotency key of a training.requested event: the identity of what fired it. */
export function requestKey(data: TrainingRequested, source: string, id: string): string {
  const p = data.provenance ?? {};
  switch (data.trigger) {
    case 'drift':
      if (p.alertFingerprint && p.startsAt) return `drift/${p.alertFingerprint}/${p.startsAt}`;
      break;
    case 'git':
      if (p.deliveryId) return `git/${p.deliveryId}`;
      break;
    case 'schedule':
    case 'catchup':
      // A catch-up for a slot and a late tick of the same slot are one run.
      if (p.scheduleSlot) return scheduleKey(data.model, p.scheduleSlot);
      break;
    case 'pipeline':
      if (p.pipelineRunUid) return `pipeline/${p.pipelineRunUid}`;
      break;
    default:
      break;
  }
  // A request re-submitted from the queue keeps the identity of the event that first carried it.
  if (p.eventSource && p.eventId) return `ce/${p.eventSource}/${p.eventId}`;
  return `ce/${source}/${id}`;
}
