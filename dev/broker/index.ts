// Local stand-in for a Knative Broker (MT channel-based semantics): CloudEvents ingress, Trigger
// filters, per-trigger delivery with retry/backoff/timeout/dead-letter sink, replies re-entering the
// broker under a TTL. Used by `mlops dev` and by tests; it keeps a record of every attempt.
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { CloudEvent, HTTP } from 'cloudevents';
import type { Logger } from 'pino';
import { parseIsoDuration } from './duration.ts';
import { compileTriggerFilter, type EventPredicate } from './filters.ts';
import { DeliverySpec, Trigger, type DeliveryRecord, type Destination, type RefResolver } from './types.ts';

export { DeliverySpec, Destination, KReference, Trigger } from './types.ts';
export type { DeliveryOutcome, DeliveryRecord, RefResolver } from './types.ts';
export { parseIsoDuration } from './duration.ts';
export { attributeValue, compileFilter, compileTriggerFilter } from './filters.ts';

export const TTL_EXTENSION = 'knativebrokerttl';
export const DEFAULT_TTL = 255;
/** Knative's default request timeout per attempt. */
export const DEFAULT_TIMEOUT_MS = 300_000;
/** Knative keeps at most this much of a failed response body in `knativeerrordata`. */
export const ERROR_DATA_LIMIT = 1024;
const MAX_BODY_BYTES = 10 * 1024 * 1024;
/** Knative's code for "no HTTP response" (transport error or timeout). */
const NO_RESPONSE = -1;

export type BrokerOptions = {
  port?: number;
  host?: string;
  /** Broker name triggers must reference in spec.broker (default "default"). */
  name?: string;
  /** When set, triggers from other namespaces are ignored; refs without a namespace default to it. */
  namespace?: string;
  triggers: object[];
  brokerDelivery?: DeliverySpec;
  resolve: RefResolver;
  logger?: Logger;
  onRecord?: (r: DeliveryRecord) => void;
  ttl?: number;
  /** Multiplier on backoff delays, so tests can run Knative-sized delays fast (default 1). */
  timeScale?: number;
  /**
   * Deliver every event this many times to each matching subscriber (default 1), as at-least-once delivery
   * may; tests use it to prove that redelivery changes nothing.
   */
  deliveries?: number;
  /** How often to deliver each matched event, asked per delivery (chaos: 1..N at random); wins over `deliveries`. */
  deliveryCount?: () => number;
};

export type Broker = {
  url: string;
  records: DeliveryRecord[];
  setTriggers(triggers: object[]): void;
  send(ce: CloudEvent<unknown>): Promise<void>;
  idle(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
};

type DeliveryPolicy = {
  retry: number;
  backoffPolicy: 'linear' | 'exponential';
  backoffDelayMs: number;
  timeoutMs: number;
  deadLetterSink?: Destination;
};

type CompiledTrigger = {
  name: string;
  namespace: string | undefined;
  matches: EventPredicate;
  subscriber: Destination;
  delivery: DeliveryPolicy;
};

type AttemptResult =
  | { ok: true; status: number; headers: http.IncomingHttpHeaders; body: Buffer }
  | { ok: false; status?: number; error?: string; body: Buffer };

/** Knative retries these statuses (and transport errors); any other 4xx goes to the dead-letter sink. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 404 || status === 408 || status === 409 || status === 429;
}

/** Delay before retry number `n` (1-based): linear = delay*n, exponential = delay*2^n. */
export function backoffMs(policy: DeliveryPolicy['backoffPolicy'], delayMs: number, n: number): number {
  return policy === 'linear' ? delayMs * n : delayMs * 2 ** n;
}

export function compileDelivery(spec: DeliverySpec | undefined, where: string): DeliveryPolicy {
  const parsed = DeliverySpec.safeParse(spec ?? {});
  if (!parsed.success) throw new Error(`${where}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const d = parsed.data;
  const policy: DeliveryPolicy = {
    retry: d.retry ?? 0,
    backoffPolicy: d.backoffPolicy ?? 'exponential',
    backoffDelayMs: 0,
    timeoutMs: DEFAULT_TIMEOUT_MS,
  };
  try {
    if (d.backoffDelay !== undefined) policy.backoffDelayMs = parseIsoDuration(d.backoffDelay);
    if (d.timeout !== undefined) policy.timeoutMs = parseIsoDuration(d.timeout);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  if (d.deadLetterSink !== undefined) policy.deadLetterSink = d.deadLetterSink;
  return policy;
}

function describeTrigger(raw: object, i: number): string {
  const name = (raw as { metadata?: { name?: unknown } }).metadata?.name;
  return typeof name === 'string' ? `trigger ${name}` : `triggers[${i}]`;
}

/** Validates Trigger manifests for this broker; throws one clear error naming the bad trigger. */
export function compileTriggers(
  manifests: object[],
  broker: { name: string; namespace?: string | undefined; delivery?: DeliverySpec | undefined },
  logger?: Logger,
): CompiledTrigger[] {
  const out: CompiledTrigger[] = [];
  manifests.forEach((raw, i) => {
    const where = describeTrigger(raw, i);
    const parsed = Trigger.safeParse(raw);
    if (!parsed.success) {
      throw new Error(`${where}: ${parsed.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`);
    }
    const t = parsed.data;
    const brokerName = t.spec.broker ?? t.spec.brokerRef?.name;
    if (brokerName === undefined) throw new Error(`${where}: spec.broker is required`);
    const namespace = t.metadata.namespace;
    if (brokerName !== broker.name || (broker.namespace !== undefined && namespace !== undefined && namespace !== broker.namespace)) {
      logger?.debug({ trigger: t.metadata.name, broker: brokerName, namespace }, 'trigger is for another broker; ignored');
      return;
    }
    let matches: EventPredicate;
    try {
      matches = compileTriggerFilter(t.spec);
    } catch (err) {
      throw new Error(`${where}: ${(err as Error).message}`);
    }
    out.push({
      name: t.metadata.name,
      namespace,
      matches,
      subscriber: t.spec.subscriber,
      delivery: compileDelivery(t.spec.delivery ?? broker.delivery, t.spec.delivery ? `${where} spec.delivery` : 'broker spec.delivery'),
    });
  });
  return out;
}

/** Turns a destination (ref and/or uri) into a URL; a uri next to a ref is resolved against the ref's URL. */
export function resolveDestination(d: Destination, namespace: string | undefined, resolve: RefResolver): string | undefined {
  if (d.ref) {
    const base = resolve({ ...d.ref, ...(d.ref.namespace ?? namespace ? { namespace: d.ref.namespace ?? namespace } : {}) });
    if (base === undefined) return undefined;
    return d.uri ? new URL(d.uri, base).toString() : base;
  }
  if (d.uri && /^https?:\/\//i.test(d.uri)) return d.uri;
  return undefined;
}

function ttlOf(event: CloudEvent<unknown>): number | undefined {
  const raw = (event as unknown as Record<string, unknown>)[TTL_EXTENSION];
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = Number(raw);
  return Number.isFinite(n) ? Math.trunc(n) : undefined;
}

/** The event without the broker's TTL extension (Knative strips it before dispatching to subscribers). */
function withoutTtl(event: CloudEvent<unknown>): CloudEvent<unknown> {
  if (!(TTL_EXTENSION in event)) return event;
  const attributes: Record<string, unknown> = { ...event.toJSON() };
  delete attributes[TTL_EXTENSION];
  return new CloudEvent<unknown>(attributes, false);
}

function headerRecord(headers: http.IncomingHttpHeaders): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) return undefined; // repeated header: not a valid single CloudEvent
    out[k] = v;
  }
  return out;
}

/** Parses an HTTP message as one valid CloudEvent (binary or structured); throws with the reason. */
export function parseCloudEvent(headers: http.IncomingHttpHeaders, body: Buffer): CloudEvent<unknown> {
  const flat = headerRecord(headers);
  if (!flat) throw new Error('repeated headers are not allowed');
  // the SDK parses structured and textual bodies only from strings; binary payloads stay bytes
  const contentType = (flat['content-type'] ?? '').toLowerCase();
  const textual = flat['ce-specversion'] === undefined || /json|text|xml/.test(contentType);
  const parsed = HTTP.toEvent({ headers: flat, body: body.length === 0 ? '' : textual ? body.toString('utf8') : body });
  if (Array.isArray(parsed)) throw new Error('batched CloudEvents are not supported by the broker');
  const event = parsed as CloudEvent<unknown>;
  try {
    event.validate();
  } catch (err) {
    const details = (err as { errors?: Array<{ message?: string }> }).errors?.map((e) => e.message).join('; ');
    throw new Error(`invalid CloudEvent: ${details || (err as Error).message}`);
  }
  return event;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(Object.assign(new Error(`body larger than ${limit} bytes`), { statusCode: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startBroker(opts: BrokerOptions): Promise<Broker> {
  const log = opts.logger;
  const brokerName = opts.name ?? 'default';
  const initialTtl = opts.ttl ?? DEFAULT_TTL;
  const timeScale = opts.timeScale ?? 1;
  const compile = (manifests: object[]) =>
    compileTriggers(manifests, { name: brokerName, namespace: opts.namespace, delivery: opts.brokerDelivery }, log);
  let triggers = compile(opts.triggers);

  const records: DeliveryRecord[] = [];
  const httpAgent = new http.Agent({ keepAlive: true });
  const httpsAgent = new https.Agent({ keepAlive: true });
  const inflight = new Set<http.ClientRequest>();
  const sleepers = new Map<NodeJS.Timeout, (awake: boolean) => void>();
  let pending = 0;
  let closed = false;
  let idleWaiters: Array<() => void> = [];

  const record = (r: DeliveryRecord) => {
    records.push(r);
    const level = r.outcome === 'delivered' ? (r.warning ? 'warn' : 'debug') : r.outcome === 'retry' ? 'info' : 'warn';
    log?.[level]({ delivery: r }, `broker ${r.outcome}: ${r.eventType} → ${r.trigger}`);
    opts.onRecord?.(r);
  };

  const settle = () => {
    pending--;
    if (pending === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  /** Waits `ms`; resolves false when the broker closed meanwhile. */
  const sleep = (ms: number) =>
    new Promise<boolean>((resolve) => {
      if (closed) return resolve(false);
      const timer = setTimeout(() => {
        sleepers.delete(timer);
        resolve(!closed);
      }, ms);
      sleepers.set(timer, resolve);
    });

  const post = (url: string, event: CloudEvent<unknown>, timeoutMs: number): Promise<AttemptResult> =>
    new Promise((resolve) => {
      if (closed) return resolve({ ok: false, error: 'broker closed', body: Buffer.alloc(0) });
      const message = HTTP.binary(event);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers)) if (v !== undefined) headers[k] = String(v);
      const body = message.body === undefined || message.body === null ? Buffer.alloc(0) : Buffer.from(message.body as string | Uint8Array);
      headers['content-length'] = String(body.length);
      const target = new URL(url);
      const secure = target.protocol === 'https:';
      const req = (secure ? https : http).request(target, { method: 'POST', headers, agent: secure ? httpsAgent : httpAgent });
      inflight.add(req);
      let done = false;
      const finish = (r: AttemptResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        inflight.delete(req);
        resolve(r);
      };
      const timer = setTimeout(() => {
        req.destroy(new Error(`timeout after ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('error', (err) => finish({ ok: false, error: err.message, body: Buffer.alloc(0) }));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= MAX_BODY_BYTES) chunks.push(c);
        });
        res.on('error', (err) => finish({ ok: false, error: err.message, body: Buffer.alloc(0) }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const resBody = Buffer.concat(chunks);
          finish(status >= 200 && status < 300 ? { ok: true, status, headers: res.headers, body: resBody } : { ok: false, status, body: resBody });
        });
      });
      req.end(body);
    });

  /** Delivers with the policy's retries; calls onAttempt for every attempt, returns the last result. */
  const deliverWithRetry = async (
    url: string,
    event: CloudEvent<unknown>,
    policy: DeliveryPolicy,
    onAttempt: (a: { attempt: number; at: Date; ms: number; result: AttemptResult; willRetry: boolean }) => void,
  ): Promise<AttemptResult> => {
    for (let attempt = 1; ; attempt++) {
      const at = new Date();
      const result = await post(url, event, policy.timeoutMs);
      const ms = Date.now() - at.getTime();
      const retryable = !result.ok && !closed && (result.status === undefined || isRetryableStatus(result.status));
      const willRetry = retryable && attempt <= policy.retry;
      onAttempt({ attempt, at, ms, result, willRetry });
      if (!willRetry) return result;
      if (!(await sleep(backoffMs(policy.backoffPolicy, policy.backoffDelayMs, attempt) * timeScale))) return result;
    }
  };

  const readReply = (result: AttemptResult & { ok: true }): { reply?: CloudEvent<unknown>; warning?: string } => {
    const contentType = String(result.headers['content-type'] ?? '');
    const looksLikeEvent = result.headers['ce-specversion'] !== undefined || contentType.startsWith('application/cloudevents');
    if (!looksLikeEvent) {
      return result.body.length > 0 ? { warning: `reply body is not a CloudEvent (${contentType || 'no content-type'}); ignored` } : {};
    }
    try {
      return { reply: parseCloudEvent(result.headers, result.body) };
    } catch (err) {
      return { warning: `reply ignored: ${(err as Error).message}` };
    }
  };

  const deadLetter = async (trigger: CompiledTrigger, event: CloudEvent<unknown>, subscriberUrl: string, last: AttemptResult) => {
    const dls = trigger.delivery.deadLetterSink;
    if (!dls) return { outcome: 'dropped' as const, reason: 'delivery failed and no deadLetterSink is configured' };
    const url = resolveDestination(dls, trigger.namespace ?? opts.namespace, opts.resolve);
    if (!url) return { outcome: 'dropped' as const, reason: 'deadLetterSink could not be resolved' };
    const errorData = last.body.length > 0 ? last.body.subarray(0, ERROR_DATA_LIMIT) : last.ok ? undefined : last.error ? Buffer.from(last.error) : undefined;
    const dead = event.cloneWith(
      {
        knativeerrordest: subscriberUrl,
        knativeerrorcode: String(last.status ?? NO_RESPONSE),
        ...(errorData ? { knativeerrordata: errorData.toString('base64') } : {}),
      },
      false,
    );
    const final = await deliverWithRetry(url, dead, trigger.delivery, () => undefined);
    const info = { url, ...(final.status !== undefined ? { status: final.status } : {}), ...(!final.ok && final.error ? { error: final.error } : {}) };
    return final.ok
      ? { outcome: 'dead-lettered' as const, deadLetter: info }
      : { outcome: 'dropped' as const, reason: 'dead-letter sink did not accept the event', deadLetter: info };
  };

  const deliver = async (trigger: CompiledTrigger, event: CloudEvent<unknown>, ttl: number) => {
    pending++;
    try {
      const base = { trigger: trigger.name, eventType: event.type, eventId: event.id, source: event.source };
      const url = resolveDestination(trigger.subscriber, trigger.namespace ?? opts.namespace, opts.resolve);
      if (!url) {
        record({ ...base, at: new Date().toISOString(), subscriber: '', attempt: 0, ms: 0, outcome: 'dropped', reason: 'subscriber could not be resolved' });
        return;
      }
      let lastAttempt: { attempt: number; at: Date; ms: number } = { attempt: 0, at: new Date(), ms: 0 };
      const last = await deliverWithRetry(url, event, trigger.delivery, ({ attempt, at, ms, result, willRetry }) => {
        lastAttempt = { attempt, at, ms };
        if (result.ok || willRetry) {
          const r: DeliveryRecord = {
            ...base,
            at: at.toISOString(),
            subscriber: url,
            attempt,
            ms,
            outcome: result.ok ? 'delivered' : 'retry',
            ...(result.status !== undefined ? { status: result.status } : {}),
            ...(!result.ok && result.error ? { error: result.error } : {}),
          };
          if (result.ok) {
            const { reply, warning } = readReply(result);
            if (reply) r.reply = { type: reply.type, id: reply.id };
            if (warning) r.warning = warning;
            record(r);
            if (reply) acceptReply(trigger, reply, ttl);
          } else {
            record(r);
          }
        }
      });
      if (last.ok) return;
      const failure = {
        ...base,
        at: lastAttempt.at.toISOString(),
        subscriber: url,
        attempt: lastAttempt.attempt,
        ms: lastAttempt.ms,
        ...(last.status !== undefined ? { status: last.status } : {}),
        ...(last.error ? { error: last.error } : {}),
      };
      if (closed) {
        record({ ...failure, outcome: 'dropped', reason: 'broker closed' });
        return;
      }
      record({ ...failure, ...(await deadLetter(trigger, event, url, last)) });
    } catch (err) {
      log?.error({ err, trigger: trigger.name }, 'broker delivery failed unexpectedly');
    } finally {
      settle();
    }
  };

  const acceptReply = (trigger: CompiledTrigger, reply: CloudEvent<unknown>, ttl: number) => {
    const next = ttl - 1;
    if (next <= 0) {
      record({
        at: new Date().toISOString(),
        trigger: trigger.name,
        subscriber: '',
        eventType: reply.type,
        eventId: reply.id,
        source: reply.source,
        attempt: 0,
        ms: 0,
        outcome: 'dropped',
        reason: `${TTL_EXTENSION} exhausted`,
      });
      return;
    }
    ingest(withoutTtl(reply), next);
  };

  /** Fans an accepted event out to every matching trigger; each trigger delivers on its own. */
  const ingest = (event: CloudEvent<unknown>, ttl: number) => {
    if (closed) return;
    for (const trigger of triggers) {
      let matched = false;
      try {
        matched = trigger.matches(event);
      } catch (err) {
        log?.error({ err, trigger: trigger.name }, 'trigger filter failed');
      }
      if (matched) {
        const times = opts.deliveryCount ? opts.deliveryCount() : (opts.deliveries ?? 1);
        for (let i = 0; i < times; i++) void deliver(trigger, event, ttl);
      }
    }
  };

  const accept = (event: CloudEvent<unknown>) => {
    const ttl = ttlOf(event) ?? initialTtl;
    if (ttl <= 0) {
      record({
        at: new Date().toISOString(),
        trigger: '',
        subscriber: '',
        eventType: event.type,
        eventId: event.id,
        source: event.source,
        attempt: 0,
        ms: 0,
        outcome: 'dropped',
        reason: `${TTL_EXTENSION} exhausted`,
      });
      return;
    }
    ingest(withoutTtl(event), ttl);
  };

  const server = http.createServer((req, res) => {
    const reply = (status: number, text?: string) => {
      res.writeHead(status, text ? { 'content-type': 'text/plain; charset=utf-8' } : {});
      res.end(text ? `${text}\n` : undefined);
    };
    if (req.method === 'GET' && (req.url === '/healthz' || req.url === '/readyz')) return reply(200, 'ok');
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return reply(405, 'only POST is supported');
    }
    readBody(req, MAX_BODY_BYTES)
      .then((body) => {
        let event: CloudEvent<unknown>;
        try {
          event = parseCloudEvent(req.headers, body);
        } catch (err) {
          log?.warn({ err: (err as Error).message }, 'broker ingress rejected a request');
          return reply(400, (err as Error).message);
        }
        accept(event);
        reply(202);
      })
      .catch((err: Error & { statusCode?: number }) => {
        if (!res.headersSent && !res.destroyed) reply(err.statusCode ?? 400, err.message);
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}/${opts.namespace ?? 'default'}/${brokerName}`;
  log?.info({ url, triggers: triggers.length }, 'local broker listening');

  return {
    url,
    records,
    setTriggers(manifests) {
      triggers = compile(manifests);
    },
    send(ce) {
      // plain attribute objects are accepted too, for callers without the SDK class at hand
      try {
        const event = ce instanceof CloudEvent ? ce : new CloudEvent<unknown>(ce);
        event.validate();
        accept(event);
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
    },
    idle(timeoutMs = 30_000) {
      if (pending === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          idleWaiters = idleWaiters.filter((w) => w !== done);
          reject(new Error(`broker not idle after ${timeoutMs} ms (${pending} deliveries pending)`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        idleWaiters.push(done);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const [timer, wake] of sleepers) {
        clearTimeout(timer);
        wake(false);
      }
      sleepers.clear();
      for (const req of inflight) req.destroy(new Error('broker closed'));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      // let aborted deliveries record their end before the agents go away
      if (pending > 0) await new Promise<void>((resolve) => idleWaiters.push(resolve));
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** One readable line per record, for `mlops dev` timelines and test failure messages. */
export function formatRecord(r: DeliveryRecord): string {
  const time = r.at.slice(11, 23);
  const result = r.status !== undefined ? String(r.status) : r.error ? `error: ${r.error}` : '';
  const extra = [
    r.reply ? `reply ${r.reply.type} (${r.reply.id})` : '',
    r.deadLetter ? `dead-letter → ${r.deadLetter.url}${r.deadLetter.status !== undefined ? ` ${r.deadLetter.status}` : ''}` : '',
    r.reason ?? '',
    r.warning ? `warning: ${r.warning}` : '',
  ].filter(Boolean);
  return `${time} ${r.eventType} (${r.eventId}) → ${r.trigger || '(broker)'}${r.subscriber ? ` ${r.subscriber}` : ''} #${r.attempt} ${result} ${r.outcome} ${r.ms}ms${extra.length ? ` — ${extra.join('; ')}` : ''}`.replace(/\s+/g, ' ');
}

export function formatTimeline(records: DeliveryRecord[]): string {
  return records.map(formatRecord).join('\n');
}
