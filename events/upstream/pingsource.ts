// Knative PingSource ticks: type dev.knative.sources.ping, source /apis/v1/namespaces/<ns>/pingsources/<name>.
import { CronExpressionParser } from 'cron-parser';
import { z } from 'zod';
import { IsoTime, ModelName } from '../names.ts';
import { envelopeOf, parseWith, type ParseResult } from './common.ts';

export const PING_EVENT_TYPE = 'dev.knative.sources.ping';

const PING_SOURCE = /^\/apis\/v1\/namespaces\/([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/pingsources\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)$/;

/** The PingSource `spec.data` we configure: which model the tick is for; other keys are kept. */
export const PingData = z.object({ model: ModelName }).loose();
export type PingData = z.infer<typeof PingData>;

export const PingTick = z.object({
  id: z.string().min(1).max(256),
  type: z.literal(PING_EVENT_TYPE),
  source: z.string().regex(PING_SOURCE, 'must be /apis/v1/namespaces/<namespace>/pingsources/<name>'),
  time: IsoTime.optional(),
  data: PingData,
});
export type PingTick = z.infer<typeof PingTick>;

export interface PingTickValue {
  id: string;
  source: string;
  namespace: string;
  name: string;
  /** The CloudEvent `time` (Knative always sets it); absent only when the sender left it out. */
  time?: string;
  model: string;
  data: PingData;
}

/**
 * Parses a PingSource tick (SDK CloudEvent or structured JSON). knative/eventing pkg/adapter/mtping
 * (`makeEvent`) sends `spec.data` (or the decoded `spec.dataBase64`) as the bytes of the event with
 * `spec.contentType`; so data arrives as an object, a JSON string, bytes or `data_base64`. PingSource
 * v1beta1 (before eventing 0.20) sent `spec.jsonData` as is when it was a JSON object and otherwise
 * wrapped it as `{"body": "<text>"}`; a tick with no data (no `spec.data`) names no model.
 */
export function parsePingSource(input: unknown): ParseResult<PingTickValue> {
  const envelope = envelopeOf(input);
  if (!envelope.ok) return envelope;
  const { ce, data } = envelope.value;
  if (ce.type !== PING_EVENT_TYPE) return { ok: false, reason: `type: Invalid input: expected "${PING_EVENT_TYPE}"` };
  if (data === undefined || data === null) {
    return { ok: false, reason: 'data: missing: the PingSource sends no data, so the tick names no model (set spec.data to {"model": "<name>"})' };
  }
  if (isLegacyBodyWrapper(data)) {
    return { ok: false, reason: 'data: a PingSource v1beta1 {"body": ...} wrapper (its spec.jsonData was not a JSON object), so the tick names no model' };
  }
  const parsed = parseWith(PingTick, { id: ce.id, type: ce.type, source: ce.source, time: ce.time, data });
  if (!parsed.ok) return parsed;
  const tick = parsed.value;
  const match = PING_SOURCE.exec(tick.source);
  const value: PingTickValue = {
    id: tick.id,
    source: tick.source,
    namespace: match?.[1] ?? '',
    name: match?.[3] ?? '',
    model: tick.data.model,
    data: tick.data,
  };
  if (tick.time !== undefined) value.time = tick.time;
  return { ok: true, value };
}

function isLegacyBodyWrapper(data: unknown): boolean {
  if (!data || typeof data !== 'object' || Array.isArray(data)) return false;
  const keys = Object.keys(data);
  return keys.length === 1 && keys[0] === 'body' && typeof (data as { body: unknown }).body === 'string';
}

// A tick may be stamped slightly before its slot (sender clock skew) or long after (redelivery keeps
// the original time): it belongs to the latest scheduled instant at or before time + 59 s.
const EARLY_TOLERANCE_MS = 59_000;

/**
 * The scheduled instant (ISO, UTC) that a tick stamped `ceTime` belongs to under `cron` in `tz`,
 * so every delivery of one tick maps to one slot. Follows cron-parser's DST rules: a wall-clock
 * time skipped by spring-forward has no slot that day (Knative's robfig/cron skips it too); one
 * repeated by fall-back has two. Throws RangeError on a bad time, cron or time zone.
 */
export function scheduleSlot(ceTime: string, cron: string, tz: string): string {
  const at = Date.parse(ceTime);
  if (!IsoTime.safeParse(ceTime).success || Number.isNaN(at)) throw new RangeError(`invalid tick time ${JSON.stringify(ceTime)}`);
  if (!isTimeZone(tz)) throw new RangeError(`invalid time zone ${JSON.stringify(tz)}`);
  let slot: Date;
  try {
    // prev() is strictly before currentDate, hence the extra millisecond.
    const schedule = CronExpressionParser.parse(cron, { currentDate: new Date(at + EARLY_TOLERANCE_MS + 1), tz });
    slot = schedule.prev().toDate();
  } catch (err) {
    throw new RangeError(`invalid cron ${JSON.stringify(cron)}: ${(err as Error).message.split('\n')[0]}`);
  }
  return slot.toISOString();
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return tz.length > 0;
  } catch {
    return false;
  }
}
