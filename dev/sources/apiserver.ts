// Local ApiServerSource (sources.knative.dev/v1): watches the listed resources and sends one CloudEvent
// per ADDED/MODIFIED/DELETED, in Resource mode (the object as data) or Reference mode, like Knative's adapter.
//
// The real adapter (knative/eventing pkg/adapter/apiserver: adapter.go, delegate.go) runs a client-go
// Reflector into a stub cache.Store: each watch event becomes one CloudEvent sent once (a failed send is only
// logged), Replace — the re-list after a watch expired — is a no-op, so what changed in the gap, deletions
// included, is never sent, and intermediate states of an object are lost; order across objects is not kept
// across watches. `faults` lets `mlops dev` reproduce that on purpose (drop, coalesce, reorder; seeded).
import { randomUUID } from 'node:crypto';
import { CloudEvent } from 'cloudevents';
import type { Logger } from 'pino';
import { z } from 'zod';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type WatchFn = (
  args: { apiVersion: string; kind: string; namespace?: string; labelSelector?: string },
  onEvent: (type: WatchEventType, obj: any) => void, // eslint-disable-line @typescript-eslint/no-explicit-any -- objects of any kind
) => Promise<() => void>;

export const DEFAULT_APISERVER_SOURCE_URI = 'https://kubernetes.default.svc';

const LabelSelectorRequirement = z.object({
  key: z.string().min(1),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).optional(),
});
export const LabelSelector = z
  .object({ matchLabels: z.record(z.string(), z.string()).optional(), matchExpressions: z.array(LabelSelectorRequirement).optional() })
  .loose();
export type LabelSelector = z.infer<typeof LabelSelector>;

export const ApiServerSource = z
  .object({
    apiVersion: z.string().optional(),
    kind: z.string().optional(),
    metadata: z.object({ name: z.string().min(1), namespace: z.string().optional() }).loose(),
    spec: z
      .object({
        mode: z.enum(['Resource', 'Reference']).optional(),
        resources: z
          .array(z.object({ apiVersion: z.string().min(1), kind: z.string().min(1), selector: LabelSelector.optional() }).loose())
          .min(1),
        owner: z.object({ apiVersion: z.string().optional(), kind: z.string().optional() }).loose().optional(),
        namespaceSelector: LabelSelector.optional(),
        ceOverrides: z.object({ extensions: z.record(z.string(), z.string()).optional() }).loose().optional(),
      })
      .loose(),
  })
  .loose();
export type ApiServerSource = z.infer<typeof ApiServerSource>;

/** `matchLabels` + `matchExpressions` in the Kubernetes label selector string syntax. */
export function labelSelectorString(selector: LabelSelector | undefined): string | undefined {
  if (!selector) return undefined;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) parts.push(`${k}=${v}`);
  for (const e of selector.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort();
    switch (e.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0) throw new Error(`label selector: ${e.operator} on "${e.key}" needs values`);
        parts.push(`${e.key} ${e.operator.toLowerCase()} (${values.join(',')})`);
        break;
      case 'Exists':
        parts.push(e.key);
        break;
      case 'DoesNotExist':
        parts.push(`!${e.key}`);
        break;
    }
  }
  return parts.length ? parts.join(',') : undefined;
}

/** Kubernetes' UnsafeGuessKindToResource, which Knative uses for the event subject. */
export function guessPlural(kind: string): string {
  const singular = kind.toLowerCase();
  if (singular === 'endpoints') return singular;
  if (singular.endsWith('s')) return `${singular}es`;
  if (singular.endsWith('y')) return `${singular.slice(0, -1)}ies`;
  return `${singular}s`;
}

/** `/apis/<apiVersion>/namespaces/<ns>/<plural>/<name>`, the subject Knative's adapter sets. */
export function resourceSubject(apiVersion: string, kind: string, namespace: string | undefined, name: string): string {
  return `/apis/${apiVersion}/namespaces/${namespace ?? ''}/${guessPlural(kind)}/${name}`;
}

const VERB = { ADDED: 'add', MODIFIED: 'update', DELETED: 'delete' } as const;

type Obj = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; ownerReferences?: Array<{ apiVersion?: string; kind?: string; controller?: boolean }> } };

/** The CloudEvent for one watch event, as Knative's ApiServerSource adapter builds it. */
export function apiServerEvent(
  source: ApiServerSource,
  resource: { apiVersion: string; kind: string },
  type: WatchEventType,
  obj: Obj,
  sourceUri = DEFAULT_APISERVER_SOURCE_URI,
): CloudEvent<unknown> {
  const mode = source.spec.mode ?? 'Reference';
  const apiVersion = obj.apiVersion ?? resource.apiVersion;
  const kind = obj.kind ?? resource.kind;
  const name = obj.metadata?.name ?? '';
  const namespace = obj.metadata?.namespace;
  const data = mode === 'Resource' ? { ...obj, apiVersion, kind } : { apiVersion, kind, name, ...(namespace ? { namespace } : {}) };
  return new CloudEvent<unknown>({
    id: randomUUID(),
    type: `dev.knative.apiserver.${mode === 'Resource' ? 'resource' : 'ref'}.${VERB[type]}`,
    source: sourceUri,
    subject: resourceSubject(apiVersion, kind, namespace, name),
    datacontenttype: 'application/json',
    data,
    // Knative copies these so triggers can filter on them
    kind,
    name,
    ...(namespace ? { namespace } : {}),
    ...(source.spec.ceOverrides?.extensions ?? {}),
  });
}

function ownedBy(obj: Obj, owner: { apiVersion?: string | undefined; kind?: string | undefined }): boolean {
  return (obj.metadata?.ownerReferences ?? []).some(
    (ref) => (owner.kind === undefined || ref.kind === owner.kind) && (owner.apiVersion === undefined || ref.apiVersion === owner.apiVersion),
  );
}

/** Deliberate infidelity knobs (see the header). Percentages 0..100; one seeded PRNG decides everything. */
export interface ApiServerFaults {
  /** Share of deliveries dropped (after coalescing and reordering), in percent. */
  dropPercent?: number;
  /** Within each window, deliver only the latest state of each object (its last event). */
  coalesce?: boolean;
  /** Within each window, shuffle deliveries across objects (each object's own events keep their order). */
  reorder?: boolean;
  /** PRNG seed (default: random, logged) so a run can be repeated. */
  seed?: number;
  /** The short window coalescing and reordering work within (default 200 ms). */
  windowMs?: number;
}

export interface ApiServerFaultStats { seen: number; coalesced: number; dropped: number; delivered: number }

/** mulberry32, seedable (uniform in [0, 1)): one implementation, dev/emulator/faults.ts. */
import { prng } from '../emulator/faults.ts';
export const seededRandom = prng;

export interface Pending<T> { object: string; item: T }

/**
 * One window's deliveries after coalescing and reordering (pure; `random` decides the shuffle).
 * Coalescing keeps each object's last event at the place of that last event.
 */
export function shapeWindow<T>(batch: Array<Pending<T>>, faults: Pick<ApiServerFaults, 'coalesce' | 'reorder'>, random: () => number): Array<Pending<T>> {
  let out = batch;
  if (faults.coalesce) {
    const last = new Map<string, number>();
    out.forEach((p, i) => last.set(p.object, i));
    out = out.filter((p, i) => last.get(p.object) === i);
  }
  if (faults.reorder) {
    // Per object a queue in watch order; repeatedly take the head of a randomly chosen object's queue.
    const queues = new Map<string, Array<Pending<T>>>();
    for (const p of out) {
      const q = queues.get(p.object);
      if (q) q.push(p);
      else queues.set(p.object, [p]);
    }
    const shuffled: Array<Pending<T>> = [];
    const keys = [...queues.keys()];
    while (keys.length > 0) {
      const k = Math.min(keys.length - 1, Math.floor(random() * keys.length));
      const q = queues.get(keys[k] as string) as Array<Pending<T>>;
      shuffled.push(q.shift() as Pending<T>);
      if (q.length === 0) keys.splice(k, 1);
    }
    out = shuffled;
  }
  return out;
}

export type ApiServerSourcesOptions = {
  sources: object[];
  /** Lossy, coalescing, reordering delivery (off by default). */
  faults?: ApiServerFaults;
  sink: (ce: CloudEvent<unknown>) => Promise<void>;
  watch: WatchFn;
  logger?: Logger;
  /** The `source` attribute of every event (Knative uses the API server URL). */
  sourceUri?: string;
};

export type ApiServerSources = {
  stop(): void;
  /** Resolves when every event seen so far has been handed to the sink (or dropped). */
  flushed(): Promise<void>;
  /** What the fault knobs did so far. */
  stats(): ApiServerFaultStats;
};

export function compileApiServerSource(raw: object): ApiServerSource {
  const parsed = ApiServerSource.safeParse(raw);
  const name = (raw as { metadata?: { name?: unknown } }).metadata?.name;
  if (!parsed.success) {
    throw new Error(
      `ApiServerSource ${typeof name === 'string' ? name : ''}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  for (const r of parsed.data.spec.resources) labelSelectorString(r.selector); // throws on a bad selector now, not later
  return parsed.data;
}

/**
 * Starts one watch per `spec.resources[]` entry. Watches are namespaced to the source's namespace;
 * with `spec.namespaceSelector` set they are cluster-wide and the selector itself is not evaluated.
 */
export async function startApiServerSources(opts: ApiServerSourcesOptions): Promise<ApiServerSources> {
  const log = opts.logger;
  const sources = opts.sources.map(compileApiServerSource);
  const stops: Array<() => void> = [];
  let stopped = false;
  // one queue per source keeps events in watch order, as the adapter sends them
  const queues = new Map<string, Promise<void>>();

  const send = (key: string, event: CloudEvent<unknown>) => {
    const prev = queues.get(key) ?? Promise.resolve();
    const next = prev.then(() =>
      opts.sink(event).catch((err: unknown) => log?.error({ err, apiserversource: key, type: event.type, subject: event.subject }, 'apiserver source sink failed')),
    );
    queues.set(key, next);
  };

  const faults = opts.faults ?? {};
  const seed = faults.seed ?? Math.floor(Math.random() * 2 ** 31);
  const random = seededRandom(seed);
  const dropShare = Math.min(100, Math.max(0, faults.dropPercent ?? 0)) / 100;
  const windowed = faults.coalesce === true || faults.reorder === true;
  const stats: ApiServerFaultStats = { seen: 0, coalesced: 0, dropped: 0, delivered: 0 };
  if (dropShare > 0 || windowed) log?.warn({ ...faults, seed }, 'apiserver sources: lossy delivery on purpose');
  let batch: Array<Pending<{ key: string; event: CloudEvent<unknown> }>> = [];
  let windowTimer: NodeJS.Timeout | undefined;
  let windowDone: Promise<void> = Promise.resolve();
  let closeWindow: (() => void) | undefined;

  const deliver = (key: string, event: CloudEvent<unknown>) => {
    if (dropShare > 0 && random() < dropShare) {
      stats.dropped++;
      log?.debug({ apiserversource: key, type: event.type, subject: event.subject }, 'apiserver source event dropped on purpose');
      return;
    }
    stats.delivered++;
    send(key, event);
  };

  const flushWindow = () => {
    windowTimer = undefined;
    const shaped = shapeWindow(batch, faults, random);
    stats.coalesced += batch.length - shaped.length;
    batch = [];
    for (const p of shaped) deliver(p.item.key, p.item.event);
    closeWindow?.();
    closeWindow = undefined;
  };

  const enqueue = (key: string, event: CloudEvent<unknown>) => {
    stats.seen++;
    if (!windowed) return deliver(key, event);
    // An object is its source, kind, namespace and name (the subject says all but the source).
    batch.push({ object: `${key} ${event.subject ?? ''}`, item: { key, event } });
    if (!windowTimer) {
      windowDone = new Promise<void>((resolve) => { closeWindow = resolve; });
      windowTimer = setTimeout(flushWindow, faults.windowMs ?? 200);
    }
  };

  try {
    for (const source of sources) {
      const key = `${source.metadata.namespace ?? 'default'}/${source.metadata.name}`;
      if (source.spec.namespaceSelector) log?.warn({ apiserversource: key }, 'spec.namespaceSelector is not evaluated locally; watching all namespaces');
      const namespace = source.spec.namespaceSelector ? undefined : (source.metadata.namespace ?? 'default');
      for (const resource of source.spec.resources) {
        const labelSelector = labelSelectorString(resource.selector);
        const stop = await opts.watch(
          { apiVersion: resource.apiVersion, kind: resource.kind, ...(namespace ? { namespace } : {}), ...(labelSelector ? { labelSelector } : {}) },
          (type, obj: Obj) => {
            if (stopped || !(type in VERB)) return;
            if (source.spec.owner && !ownedBy(obj, source.spec.owner)) return;
            enqueue(key, apiServerEvent(source, resource, type, obj, opts.sourceUri));
          },
        );
        stops.push(stop);
      }
    }
  } catch (err) {
    for (const stop of stops) stop();
    throw err;
  }
  log?.info({ apiserversources: sources.map((s) => s.metadata.name) }, 'apiserver sources watching');

  return {
    stop() {
      stopped = true;
      for (const stop of stops.splice(0)) stop();
      // Like an adapter going away: what it had not sent yet is lost.
      clearTimeout(windowTimer);
      windowTimer = undefined;
      batch = [];
      closeWindow?.();
    },
    async flushed() {
      await windowDone;
      await Promise.all(queues.values());
    },
    stats: () => ({ ...stats }),
  };
}
