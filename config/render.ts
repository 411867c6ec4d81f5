// Renders the catalog-dependent manifests (docs/design.md): per step a Knative Service with its
// ServiceAccount and least-privilege Role, the Broker and its Triggers, PingSources, ApiServerSources, the
// SinkBinding, the catalog and scripts ConfigMaps. Everything per step comes from the steps' declarations
// (functions/registry.ts, docs/design.md "A step declares itself"). `mlops render` writes them; `mlops dev` loads
// the same objects, so what runs locally is what deploys.
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { Catalog } from '../runtime/catalog.ts';
import { ROUTE_EXTENSION, triggersOf, type ApiServerSourceDecl, type Rule, type StepDeclaration } from '../runtime/declare.ts';
import { Labels, MANAGER } from '../runtime/labels.ts';
import { ISOLATED_JOB_STEPS, S3_UPLOAD_EGRESS, SCRIPTS_CONFIGMAP } from '../runtime/jobs.ts';
import { Resources } from '../runtime/resources.ts';
import { DEFAULT_ARGOCD_NAMESPACE } from '../functions/argocd-sync/triggers.ts';
import { STEPS } from '../functions/registry.ts';
import { renderEventPolicies } from './eventpolicies.ts';
import { withWarmSteps } from './warmsteps.ts';

export { ROUTE_EXTENSION } from '../runtime/declare.ts';
/** Where Argo CD Applications live; argocd-sync gets a Role there for them alone. */
export const ARGOCD_NAMESPACE = DEFAULT_ARGOCD_NAMESPACE;

export const BROKER_NAME = 'model-lifecycle';
export const CATALOG_CONFIGMAP = 'model-catalog';
export const SECRETS_NAME = 'model-lifecycle-secrets';
export const DEFAULT_IMAGE = 'quay.io/model-lifecycle/functions:0.1.0';
const APISERVER_SA = 'mlops-apiserversource';

type Obj = Record<string, unknown>;

export interface RenderOptions {
  namespace: string;
  image: string;
  /** Repo root for config/jobs scripts and config/crds. */
  root?: string;
  /** Add Knative EventPolicies (config/eventpolicies.ts, docs/security.md). */
  senderAuth?: boolean;
  /** The steps to render (default: every step of functions/registry.ts). */
  steps?: readonly StepDeclaration[];
  /** A scale-down delay (e.g. `10m`) on the steps a run calls in quick succession (config/warmsteps.ts). */
  warmSteps?: string;
}

/** What each step's code calls on the API, and nothing more (the e2e tests enforce exactly these). */
export const StepRules: Record<string, readonly Rule[]> = Object.fromEntries(STEPS.map((s) => [s.name, s.rules]));

interface TriggerSpec { name: string; subscriber: string; filter: Record<string, string> }

/** Every Trigger: (subscriber, exact attribute filter), step by step as declared. */
export function triggerSpecs(steps: readonly StepDeclaration[] = STEPS): TriggerSpec[] {
  return steps.flatMap((s) => triggersOf(s).map((t) => ({ name: `${s.name}-${t.name}`, subscriber: s.name, filter: { ...t.filter } })));
}

const labels = (extra: Record<string, string> = {}): Record<string, string> => ({ [Labels.managedBy]: MANAGER, [Labels.partOf]: 'model-lifecycle', ...extra });
const serviceRef = (name: string, namespace: string): Obj => ({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name, namespace } });
const brokerRef = (namespace: string): Obj => ({ ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: BROKER_NAME, namespace } });

export function renderManifests(catalog: Catalog, opts: RenderOptions): Record<string, Obj[]> {
  const ns = opts.namespace;
  const meta = (name: string, extra: Record<string, string> = {}): Obj => ({ name, namespace: ns, labels: labels(extra) });
  const declared = opts.steps ?? STEPS;
  const steps = declared.map((s) => s.name);
  const byName = new Map(declared.map((s) => [s.name, s]));
  if (byName.size !== declared.length) throw new Error(`two steps share a name: ${steps.filter((n, i) => steps.indexOf(n) !== i).join(', ')}`);
  const decl = (step: string): StepDeclaration => byName.get(step) as StepDeclaration;

  const services: Obj[] = steps.map((step) => ({
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: meta(step, {
      [Labels.step]: step,
      ...(decl(step).sink ? { 'mlops.dev/sink-binding': 'broker' } : {}),
      // Only the webhook intakes are reachable from outside the cluster; the broker reaches the rest.
      ...(decl(step).intake ? {} : { 'networking.knative.dev/visibility': 'cluster-local' }),
    }),
    spec: {
      template: {
        metadata: { annotations: { 'autoscaling.knative.dev/min-scale': '0', 'autoscaling.knative.dev/max-scale': '5' }, labels: labels({ [Labels.step]: step }) },
        spec: {
          serviceAccountName: `mlops-${step}`,
          timeoutSeconds: 300,
          containerConcurrency: 50,
          containers: [{
            image: opts.image,
            env: [
              { name: 'FUNCTION', value: step },
              { name: 'MODEL_CATALOG', value: '/etc/mlops/models.yaml' },
              { name: 'NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              ...decl(step).secrets.map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: SECRETS_NAME, key, optional: true } } })),
            ],
            ports: [{ containerPort: 8080 }],
            readinessProbe: { httpGet: { path: '/health/readiness' } },
            livenessProbe: { httpGet: { path: '/health/liveness' } },
            volumeMounts: [{ name: 'catalog', mountPath: '/etc/mlops', readOnly: true }],
            securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
          }],
          volumes: [{ name: 'catalog', configMap: { name: CATALOG_CONFIGMAP } }],
        },
      },
    },
  }));

  const rbac: Obj[] = [];
  for (const step of steps) {
    const sa = `mlops-${step}`;
    rbac.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(sa, { [Labels.step]: step }) });
    const rules = [...decl(step).rules, ...decl(step).catalogRules(catalog)];
    if (rules.length === 0) continue; // the intakes touch no Kubernetes API at all
    rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(sa, { [Labels.step]: step }), rules });
    rbac.push({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(sa, { [Labels.step]: step }),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    });
  }
  // Rules a step needs in another namespace (argocd-sync: Applications in Argo CD's), bound to its ServiceAccount.
  for (const [step, namespace, rules] of declared.flatMap((s) => Object.entries(s.namespaceRules).map(([n, r]) => [s.name, n, r] as const))) {
    const sa = `mlops-${step}`;
    const elsewhere = { name: sa, namespace, labels: labels({ [Labels.step]: step }) };
    rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: elsewhere, rules });
    rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: elsewhere,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }] });
  }
  // The identity the training notebooks run as (the NVJ's podConfig.serviceAccountName); it needs no API access.
  for (const sa of [...new Set(catalog.models.map((m) => m.serviceAccountName))].sort()) {
    rbac.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(sa, { [Labels.step]: 'training' }) });
  }
  // The ApiServerSource adapter lists and watches what it reports.
  rbac.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(APISERVER_SA) });
  const watched = declared.flatMap((s) => s.apiServerSources.map((src) => resourceOf(src, catalog)));
  rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(APISERVER_SA), rules: watchRules(watched) });
  rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(APISERVER_SA),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: APISERVER_SA },
    subjects: [{ kind: 'ServiceAccount', name: APISERVER_SA, namespace: ns }] });

  const broker: Obj = {
    apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', metadata: meta(BROKER_NAME),
    spec: { delivery: { retry: 6, backoffPolicy: 'exponential', backoffDelay: 'PT0.5S', timeout: 'PT300S', deadLetterSink: serviceRef(deadLetterSinkOf(declared), ns) } },
  };
  const triggers: Obj[] = triggerSpecs(declared).map((t) => ({
    apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: meta(t.name, { [Labels.step]: t.subscriber }),
    spec: {
      broker: BROKER_NAME,
      filter: { attributes: t.filter },
      subscriber: serviceRef(t.subscriber, ns),
      ...(decl(t.subscriber).delivery ? { delivery: { ...decl(t.subscriber).delivery } } : {}),
    },
  }));

  const pings: Obj[] = declared.flatMap((s) => s.pingSources(catalog)).map((p) => ({
    apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: meta(p.name, { ...p.labels }),
    spec: { schedule: p.schedule, timezone: p.timezone, contentType: 'application/json', data: p.data,
      ceOverrides: { extensions: { [ROUTE_EXTENSION]: p.route } }, sink: brokerRef(ns) },
  }));

  const apiSources: Obj[] = declared.flatMap((s) => s.apiServerSources).map((src) => ({
    apiVersion: 'sources.knative.dev/v1', kind: 'ApiServerSource', metadata: meta(src.name),
    spec: { mode: src.mode ?? 'Resource', serviceAccountName: APISERVER_SA, resources: [resourceOf(src, catalog)], ceOverrides: { extensions: { [ROUTE_EXTENSION]: src.route } }, sink: brokerRef(ns) },
  }));

  const sinkBinding: Obj = {
    apiVersion: 'sources.knative.dev/v1', kind: 'SinkBinding', metadata: meta('mlops-broker-sink'),
    spec: { subject: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', selector: { matchLabels: { 'mlops.dev/sink-binding': 'broker' } } }, sink: brokerRef(ns) },
  };

  const root = opts.root ?? '.';
  const configMaps: Obj[] = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(CATALOG_CONFIGMAP), data: { 'models.yaml': stringify(catalog) } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(SCRIPTS_CONFIGMAP), data: Object.fromEntries(['copy.py', 'gate.py', 'promote.py', 'placeholder.py', 'jobs_common.py'].map((f) => [f, readFileSync(`${root}/config/jobs/${f}`, 'utf8')])) },
  ];

  // Gate, promote and rollback Jobs unpickle model files (which can run code): no egress at all, not even DNS.
  const networkPolicies: Obj[] = [{
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta('mlops-model-jobs-no-egress'),
    spec: {
      podSelector: { matchLabels: { [Labels.managedBy]: MANAGER }, matchExpressions: [{ key: Labels.step, operator: 'In', values: [...ISOLATED_JOB_STEPS] }] },
      policyTypes: ['Egress'],
      egress: [],
    },
  }, {
    // A bucket model's promote Job PUTs the release to a presigned URL (docs/storage.md "Promotion into the
    // bucket"): NetworkPolicies add up, so only pods with this label may open TCP connections (and DNS). Narrow the
    // `to:` to your S3 endpoint (an ipBlock or the object store's namespace) where you know it.
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: meta('mlops-model-jobs-s3-upload'),
    spec: {
      podSelector: { matchLabels: { [Labels.managedBy]: MANAGER, [S3_UPLOAD_EGRESS.label]: S3_UPLOAD_EGRESS.value }, matchExpressions: [{ key: Labels.step, operator: 'In', values: ['promote'] }] },
      policyTypes: ['Egress'],
      egress: [{ ports: [{ protocol: 'TCP' }, { protocol: 'UDP', port: 53 }] }],
    },
  }];

  const files: Record<string, Obj[]> = {
    'knative/services.yaml': services,
    'knative/broker.yaml': [broker],
    'knative/triggers.yaml': triggers,
    'knative/pingsources.yaml': pings,
    'knative/apiserversources.yaml': apiSources,
    'knative/sinkbinding.yaml': [sinkBinding],
    'rbac/roles.yaml': rbac,
    'configmaps.yaml': configMaps,
    'networkpolicies.yaml': networkPolicies,
  };
  if (opts.senderAuth) files['knative/eventpolicies.yaml'] = renderEventPolicies(files, ns);
  if (opts.warmSteps !== undefined) files['knative/services.yaml'] = withWarmSteps(services, opts.warmSteps, declared.filter((s) => s.warm).map((s) => s.name));
  return files;
}

function resourceOf(src: ApiServerSourceDecl, catalog: Catalog): { apiVersion: string; kind: string; selector?: object } {
  return typeof src.resource === 'function' ? src.resource(catalog) : src.resource;
}

/** What the ApiServerSource adapter needs on what it reports: get, list and watch, one rule per resource. */
function watchRules(watched: Array<{ apiVersion: string; kind: string }>): Rule[] {
  const rules: Rule[] = [];
  for (const { apiVersion, kind } of watched) {
    const descriptor = Object.values(Resources).find((r) => r.apiVersion === apiVersion && r.kind === kind);
    if (!descriptor) throw new Error(`an ApiServerSource watches ${apiVersion} ${kind}, which runtime/resources.ts does not describe`);
    if (rules.some((r) => r.apiGroups[0] === descriptor.group && r.resources[0] === descriptor.plural)) continue;
    rules.push({ apiGroups: [descriptor.group], resources: [descriptor.plural], verbs: ['get', 'list', 'watch'] });
  }
  return rules;
}

function deadLetterSinkOf(steps: readonly StepDeclaration[]): string {
  const sinks = steps.filter((s) => s.deadLetterSink);
  if (sinks.length !== 1 || !sinks[0]) throw new Error(`exactly one step must be the dead-letter sink, found ${sinks.length}`);
  return sinks[0].name;
}

export function toYamlStream(objs: Obj[]): string {
  return objs.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}
