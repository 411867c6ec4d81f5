import { EventTypes, Extensions, type EventType } from '../events/catalog.ts';
import type { Catalog } from './catalog.ts';
import type { StepDefinition } from './step.ts';

// A step declares itself in functions/<step>/step.ts (docs/design.md, Parts): what it consumes, which sources
// feed it, what it emits, the secrets and API rules it needs, and a lazy loader for its module. The registry
// (functions/registry.ts), `mlops render`, the local broker and notify's routing are derived from these, so a
// declaration must stay light: importing it never loads the step's module.

/** CloudEvent extension our sources stamp on their events (`ceOverrides`); Triggers filter on it. */
export const ROUTE_EXTENSION = 'mlopsroute';

/** One RBAC PolicyRule (rbac.authorization.k8s.io/v1). */
export type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

export type LabelSelector = {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
};

/** A Trigger to this step: `<step>-<name>`, with Knative's exact-match attribute filter (`spec.filter.attributes`). */
export interface TriggerDecl {
  readonly name: string;
  readonly filter: Readonly<{ type: string } & Record<string, string>>;
}

/** An ApiServerSource (sources.knative.dev/v1) whose events carry `mlopsroute: <route>`. */
export interface ApiServerSourceDecl {
  readonly name: string;
  readonly route: string;
  readonly mode?: 'Resource' | 'Reference';
  /** One watched resource; a function when it depends on the catalog (the predictor pods of its models). */
  readonly resource: ApiServerResource | ((catalog: Catalog) => ApiServerResource);
}
export interface ApiServerResource { apiVersion: string; kind: string; selector?: LabelSelector }

/** A PingSource (sources.knative.dev/v1) to the Broker whose events carry `mlopsroute: <route>`. */
export interface PingSourceDecl {
  readonly name: string;
  readonly route: string;
  readonly schedule: string;
  readonly timezone: string;
  /** JSON text of the event data. */
  readonly data: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** Knative's DeliverySpec for this step's Triggers (retries, backoff). */
export interface DeliveryDecl { retry: number; backoffPolicy: 'linear' | 'exponential'; backoffDelay: string }

export interface StepDeclarationInput<N extends string, R extends boolean> {
  /** The folder, the Knative Service, the `FUNCTION` value and the ServiceAccount suffix (`mlops-<name>`). */
  readonly name: N;
  /** `cloudevent` (through the Broker) or `http` (raw webhooks from outside; see `intake`). */
  readonly input: 'cloudevent' | 'http';
  /** Receives webhooks from outside the cluster: public route, no EventPolicy (it authenticates callers itself). */
  readonly intake?: boolean;
  /** Triggers to this step. */
  readonly consumes?: readonly TriggerDecl[];
  /** Wake-ups from the watchdog's reconcile: a `<name>-reconcile` Trigger on `run.reconcile` with `target: <name>`. */
  readonly reconcile?: R;
  /** ApiServerSources whose events this step's Triggers route (by `mlopsroute`). */
  readonly apiServerSources?: readonly ApiServerSourceDecl[];
  /** PingSources this step's Triggers route; may depend on the catalog (one per scheduled model). */
  readonly pingSources?: (catalog: Catalog) => readonly PingSourceDecl[];
  /** Our event types it emits (replies or sends); the sender rule (runtime/senders.ts) allows exactly these. */
  readonly emits?: readonly EventType[];
  /** Sends events itself through K_SINK (a SinkBinding gives it the Broker), not only as replies. */
  readonly sink?: boolean;
  /**
   * Called several times within minutes by one run once training is done: `mlops render --warm-steps` keeps its pod
   * up for a while (config/warmsteps.ts). Not start-training, the intakes or the minute-ticked watchdog.
   */
  readonly warm?: boolean;
  /** Keys of the shared Secret it reads as environment variables (optional: unset means the feature is off). */
  readonly secrets?: readonly string[];
  /** What its code calls on the API in its own namespace, and nothing more. */
  readonly rules?: readonly Rule[];
  /** Rules that name objects the catalog decides (each model's controls ConfigMap), in its own namespace. */
  readonly catalogRules?: (catalog: Catalog) => readonly Rule[];
  /** Rules it needs in other namespaces (Argo CD Applications), by namespace. */
  readonly namespaceRules?: Readonly<Record<string, readonly Rule[]>>;
  /** Delivery of its Triggers when not the Broker's. */
  readonly delivery?: DeliveryDecl;
  /** The Broker's dead-letter sink (exactly one step). */
  readonly deadLetterSink?: boolean;
  /** The step's module, loaded only by the process that serves it. */
  readonly load: () => Promise<StepDefinition>;
}

export interface StepDeclaration<N extends string = string, R extends boolean = boolean> extends Required<Omit<StepDeclarationInput<N, R>, 'delivery'>> {
  readonly delivery: DeliveryDecl | undefined;
}

/**
 * A step's declaration with every optional part filled in (nothing consumed, emitted or allowed by default).
 * Throws where the step is declared for what Kubernetes or Knative would refuse later.
 */
export function declareStep<const N extends string, const R extends boolean = false>(d: StepDeclarationInput<N, R>): StepDeclaration<N, R> {
  // The name is a Knative Service name, and its revisions (`<name>-00001`) and labels must still fit 63 characters.
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(d.name) || d.name.length > 50) throw new Error(`step name ${JSON.stringify(d.name)} must be a DNS-1123 label of at most 50 characters`);
  const names = (d.consumes ?? []).map((t) => t.name).concat(d.reconcile ? ['reconcile'] : []);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new Error(`step ${d.name}: two Triggers named ${JSON.stringify(twice)}`);
  for (const t of d.consumes ?? []) {
    // CloudEvent attribute names are lower-case letters and digits (CloudEvents spec, "Attribute Naming Convention").
    const bad = Object.keys(t.filter).find((k) => !/^[a-z0-9]{1,20}$/.test(k));
    if (bad !== undefined) throw new Error(`step ${d.name}: Trigger ${t.name} filters on ${JSON.stringify(bad)}, which is not a CloudEvent attribute name`);
  }
  return {
    intake: false,
    consumes: [],
    reconcile: false as R,
    apiServerSources: [],
    pingSources: () => [],
    emits: [],
    sink: false,
    warm: false,
    secrets: [],
    rules: [],
    catalogRules: () => [],
    namespaceRules: {},
    deadLetterSink: false,
    ...d,
    delivery: d.delivery,
  };
}

/**
 * The rules of a step whose work runs in a Job it creates (copy, gate, promote): its run, the Job (owned by the run,
 * so `update` on the run's finalizers under OpenShift's owner-reference admission, docs/openshift.md), the Job's pods
 * and FailedCreate Events (runtime/jobs.ts), and the model's lock it frees; `extra` goes before the lock rule.
 */
export function jobStepRules(modelRunVerbs: readonly string[], extra: readonly Rule[] = []): Rule[] {
  return [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: [...modelRunVerbs] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ...extra,
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ];
}

/** Filter for events of `type` from this step's own source with route `route`. */
export const routed = (type: string, route: string): { type: string; [ROUTE_EXTENSION]: string } => ({ type, [ROUTE_EXTENSION]: route });

/** Every Trigger of a step: its own, then (when it declares `reconcile`) its wake-up by the watchdog's reconcile. */
export function triggersOf(s: StepDeclaration): TriggerDecl[] {
  return [...s.consumes, ...(s.reconcile ? [{ name: 'reconcile', filter: { type: EventTypes.runReconcile, [Extensions.target]: s.name } }] : [])];
}
