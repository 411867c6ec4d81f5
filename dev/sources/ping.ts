// Local PingSource (sources.knative.dev/v1): fires `dev.knative.sources.ping` on each source's cron
// schedule in its timezone and hands the event to a sink (usually the local broker's send).
import { randomUUID } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import { CronExpressionParser } from 'cron-parser';
import type { Logger } from 'pino';
import { z } from 'zod';

export const PING_EVENT_TYPE = 'dev.knative.sources.ping';
/** setTimeout cannot wait longer than this; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export const PingSource = z
  .object({
    apiVersion: z.string().optional(),
    kind: z.string().optional(),
    metadata: z.object({ name: z.string().min(1), namespace: z.string().optional() }).loose(),
    spec: z
      .object({
        schedule: z.string().min(1).optional(),
        timezone: z.string().min(1).optional(),
        data: z.string().optional(),
        dataBase64: z.string().optional(),
        contentType: z.string().optional(),
        ceOverrides: z.object({ extensions: z.record(z.string(), z.string()).optional() }).loose().optional(),
      })
      .loose()
      .refine((s) => s.data === undefined || s.dataBase64 === undefined, 'spec.data and spec.dataBase64 are mutually exclusive'),
  })
  .loose();
export type PingSource = z.infer<typeof PingSource>;

export type PingSink = (ce: CloudEvent<unknown>) => Promise<void>;

export type PingSourcesOptions = {
  sources: object[];
  sink: PingSink;
  now?: () => Date;
  logger?: Logger;
};

export type PingSources = {
  fireNow(name: string, at?: Date): Promise<CloudEvent<unknown>>;
  /** The next time each source fires after `after` (default now), keyed by `<namespace>/<name>`. */
  nextFireTimes(after?: Date): Record<string, Date>;
  stop(): void;
};

type CompiledPing = { key: string; source: PingSource; schedule: string; timezone: string | undefined };

/** Splits a `CRON_TZ=Zone` / `TZ=Zone` prefix (robfig/cron syntax Knative accepts) from the schedule. */
function splitSchedule(schedule: string, timezone: string | undefined): { expr: string; tz: string | undefined } {
  const m = /^(?:CRON_TZ|TZ)=(\S+)\s+(.+)$/.exec(schedule.trim());
  if (m) return { expr: (m[2] as string).trim(), tz: m[1] };
  return { expr: schedule.trim(), tz: timezone };
}

function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function compilePingSource(raw: object): CompiledPing {
  const parsed = PingSource.safeParse(raw);
  const name = (raw as { metadata?: { name?: unknown } }).metadata?.name;
  const where = typeof name === 'string' ? `PingSource ${name}` : 'PingSource';
  if (!parsed.success) throw new Error(`${where}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  const source = parsed.data;
  const { expr, tz } = splitSchedule(source.spec.schedule ?? '* * * * *', source.spec.timezone);
  if (tz !== undefined && !isValidTimeZone(tz)) throw new Error(`${where}: unknown timezone "${tz}"`);
  if (expr.split(/\s+/).length !== 5 && !expr.startsWith('@')) {
    throw new Error(`${where}: schedule "${expr}" must have 5 fields (minute hour day-of-month month day-of-week)`);
  }
  try {
    CronExpressionParser.parse(expr, tz ? { tz } : {});
  } catch (err) {
    throw new Error(`${where}: invalid schedule "${expr}": ${(err as Error).message}`);
  }
  return { key: `${source.metadata.namespace ?? 'default'}/${source.metadata.name}`, source, schedule: expr, timezone: tz };
}

/** The first scheduled time strictly after `after`, in the source's timezone (UTC when none is given). */
export function nextPingTime(ping: CompiledPing, after: Date): Date {
  return CronExpressionParser.parse(ping.schedule, { currentDate: after, ...(ping.timezone ? { tz: ping.timezone } : { tz: 'UTC' }) })
    .next()
    .toDate();
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The event a PingSource sends for the slot `at`, like Knative's ping adapter. */
export function pingEvent(source: PingSource, at: Date): CloudEvent<unknown> {
  const ns = source.metadata.namespace ?? 'default';
  const spec = source.spec;
  const attributes: Record<string, unknown> = {
    id: randomUUID(),
    type: PING_EVENT_TYPE,
    source: `/apis/v1/namespaces/${ns}/pingsources/${source.metadata.name}`,
    time: at.toISOString(),
    ...(spec.ceOverrides?.extensions ?? {}),
  };
  if (spec.dataBase64 !== undefined) {
    attributes['data'] = Buffer.from(spec.dataBase64, 'base64');
    attributes['datacontenttype'] = spec.contentType ?? 'application/octet-stream';
  } else if (spec.data !== undefined) {
    const contentType = spec.contentType ?? (isJson(spec.data) ? 'application/json' : 'text/plain');
    attributes['datacontenttype'] = contentType;
    attributes['data'] = /json/i.test(contentType) && isJson(spec.data) ? JSON.parse(spec.data) : spec.data;
  }
  return new CloudEvent<unknown>(attributes);
}

export function startPingSources(opts: PingSourcesOptions): PingSources {
  const now = opts.now ?? (() => new Date());
  const log = opts.logger;
  const pings = opts.sources.map(compilePingSource);
  const timers = new Map<string, NodeJS.Timeout>();
  let stopped = false;

  const find = (name: string) => pings.find((p) => p.key === name || p.source.metadata.name === name);

  const emit = async (ping: CompiledPing, at: Date) => {
    const event = pingEvent(ping.source, at);
    await opts.sink(event);
    log?.info({ pingsource: ping.key, id: event.id, time: event.time }, 'ping fired');
    return event;
  };

  const arm = (ping: CompiledPing, after: Date) => {
    if (stopped) return;
    const slot = nextPingTime(ping, after);
    const wait = (target: Date) => {
      const delay = Math.max(0, target.getTime() - now().getTime());
      const timer = setTimeout(() => {
        if (stopped) return;
        if (target.getTime() > now().getTime()) return wait(target); // woke early (long wait was capped)
        emit(ping, target).catch((err: unknown) => log?.error({ err, pingsource: ping.key }, 'ping sink failed'));
        arm(ping, target); // next slot after this one, so a slow sink never skips or repeats a slot
      }, Math.min(delay, MAX_TIMER_MS));
      timer.unref(); // a schedule alone must not keep the process alive
      timers.set(ping.key, timer);
    };
    wait(slot);
  };

  const startAt = now();
  for (const ping of pings) arm(ping, startAt);
  log?.info({ pingsources: pings.map((p) => p.key) }, 'ping sources scheduled');

  return {
    async fireNow(name, at) {
      const ping = find(name);
      if (!ping) throw new Error(`no PingSource named ${name}`);
      return emit(ping, at ?? now());
    },
    nextFireTimes(after) {
      const from = after ?? now();
      return Object.fromEntries(pings.map((p) => [p.key, nextPingTime(p, from)]));
    },
    stop() {
      stopped = true;
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
