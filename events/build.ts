// The one place outgoing CloudEvents are built (and validated), and our own events parsed back.
import { randomUUID } from 'node:crypto';
import { CloudEvent, ValidationError } from 'cloudevents';
import type { z } from 'zod';
import {
  EventDataSchemas,
  Extensions,
  isEventType,
  nounVerbOf,
  sourceOf,
  type EventData,
  type EventType,
} from './catalog.ts';
import { describeIssues, isDns1123Label } from './names.ts';

/** An event we were about to emit (or parse) is invalid; `message` is one line. */
export class EventValidationError extends Error {
  readonly type: string;
  constructor(type: string, reason: string) {
    super(`invalid ${type} event: ${reason}`);
    this.name = 'EventValidationError';
    this.type = type;
  }
}

export interface BuildEventOptions<T extends EventType> {
  /** The step (function name) emitting the event; becomes `source` `/model-lifecycle/<step>`. */
  step: string;
  data: EventData<T>;
  /** Defaults to the run. */
  subject?: string;
  /** Extension attributes; `model`, `run` and `profile` default to the same-named data fields. */
  model?: string;
  run?: string;
  profile?: 'cpu' | 'gpu';
  /** W3C trace context to propagate; dropped when malformed (tracing never fails an event). */
  traceparent?: string;
  /** Defaults to `<run>.<noun>.<verb>` when a run is known, else a random uuid. */
  id?: string;
  time?: string;
}

const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

function stringField(data: unknown, key: string): string | undefined {
  if (data && typeof data === 'object' && key in data) {
    const value = (data as Record<string, unknown>)[key];
    if (typeof value === 'string') return value;
  }
  return undefined;
}

export function buildEvent<T extends EventType>(type: T, opts: BuildEventOptions<T>): CloudEvent<EventData<T>> {
  if (!isEventType(type)) throw new EventValidationError(String(type), 'unknown event type');
  if (!isDns1123Label(opts.step)) throw new EventValidationError(type, `step "${opts.step}" must be a DNS-1123 label`);
  const schema = EventDataSchemas[type] as unknown as z.ZodType<EventData<T>>;
  const parsed = schema.safeParse(opts.data);
  if (!parsed.success) throw new EventValidationError(type, describeIssues(parsed.error, 'data'));
  const data = parsed.data;

  const model = opts.model ?? stringField(data, 'model');
  const run = opts.run ?? stringField(data, 'run');
  const profile = opts.profile ?? stringField(data, 'profile');
  if (model !== undefined && !isDns1123Label(model)) throw new EventValidationError(type, `model "${model}" must be a DNS-1123 label`);
  if (run !== undefined && !isDns1123Label(run)) throw new EventValidationError(type, `run "${run}" must be a DNS-1123 label`);
  if (profile !== undefined && profile !== 'cpu' && profile !== 'gpu') throw new EventValidationError(type, `profile must be cpu or gpu`);

  const time = opts.time ?? new Date().toISOString();
  if (Number.isNaN(Date.parse(time))) throw new EventValidationError(type, `time "${time}" is not a date-time`);
  const id = opts.id ?? (run !== undefined ? `${run}.${nounVerbOf(type)}` : randomUUID());
  if (id.length === 0) throw new EventValidationError(type, 'id must not be empty');

  const attributes: Record<string, unknown> = {
    specversion: '1.0',
    id,
    type,
    source: sourceOf(opts.step),
    time,
    datacontenttype: 'application/json',
    data,
  };
  const subject = opts.subject ?? run;
  if (subject !== undefined) attributes.subject = subject;
  if (model !== undefined) attributes[Extensions.model] = model;
  if (run !== undefined) attributes[Extensions.run] = run;
  if (profile !== undefined) attributes[Extensions.profile] = profile;
  const target = stringField(data, 'target');
  if (target !== undefined) attributes[Extensions.target] = target;
  if (opts.traceparent !== undefined && TRACEPARENT.test(opts.traceparent)) attributes[Extensions.traceparent] = opts.traceparent;

  try {
    return new CloudEvent<EventData<T>>(attributes);
  } catch (err) {
    const reason = err instanceof ValidationError ? err.message : String(err);
    throw new EventValidationError(type, reason.split('\n')[0] ?? 'invalid CloudEvent');
  }
}

export type ParsedEvent =
  | { [K in EventType]: { ok: true; type: K; data: EventData<K> } }[EventType]
  | { ok: false; reason: string };

/** What a CloudEvent (SDK object or plain structured-mode JSON) looks like to `parseEvent`. */
export interface EventLike {
  type: string;
  data?: unknown;
  data_base64?: string;
  [key: string]: unknown;
}

/**
 * Decodes a CloudEvent's data: an object as is, a JSON string or bytes parsed, `data_base64`
 * decoded and parsed. Returns undefined when there is no data (absent, null or an empty body);
 * throws SyntaxError on bad JSON.
 *
 * Bytes arrive as any typed array: the CloudEvents JS SDK (v10, `parseStructured` in
 * message/http/index.js) turns a structured-mode `data_base64` into a `Uint32Array` holding one
 * byte per element, and keeps the base64 text in `data_base64`; binary-mode bodies may be Buffers.
 */
export function decodeEventData(ce: { data?: unknown; data_base64?: unknown }): unknown {
  let data = ce.data;
  if (typeof ce.data_base64 === 'string' && ce.data_base64 !== '' && (data === undefined || ArrayBuffer.isView(data))) {
    data = Buffer.from(ce.data_base64, 'base64');
  }
  if (ArrayBuffer.isView(data)) {
    // Uint8Array/Buffer: the bytes themselves; any other typed array: one byte per element.
    const bytes = data instanceof Uint8Array ? data
      : data instanceof DataView ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
        : Uint8Array.from(data as unknown as ArrayLike<number>);
    data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  }
  if (typeof data === 'string') return data.trim() === '' ? undefined : (JSON.parse(data) as unknown);
  return data ?? undefined;
}

/** Validates one of our own events (type known, data matching its schema). */
export function parseEvent(ce: EventLike): ParsedEvent {
  if (!ce || typeof ce !== 'object') return { ok: false, reason: 'event is not an object' };
  const type = ce.type;
  if (!isEventType(type)) return { ok: false, reason: `unknown event type ${JSON.stringify(type)}` };
  let data: unknown;
  try {
    data = decodeEventData(ce);
  } catch {
    return { ok: false, reason: 'data: not valid JSON' };
  }
  if (data === undefined || data === null) return { ok: false, reason: 'data: missing' };
  const parsed = EventDataSchemas[type].safeParse(data);
  if (!parsed.success) return { ok: false, reason: describeIssues(parsed.error, 'data') };
  return { ok: true, type, data: parsed.data } as ParsedEvent;
}
