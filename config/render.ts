// Renders the catalog-dependent manifests (docs/design.md): per step a Knative Service with its
// ServiceAccount and least-privilege Role, the Broker and its Triggers, PingSources, ApiServerSources, the
// SinkBinding, the catalog and scripts ConfigMaps. `mlops render` writes them; `mlops dev` loads the same
// objects, so what runs locally is what deploys.
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import type { Catalog } from '../runtime/catalog.ts';
import { EventTypes, Extensions, ReconcileTarget } from '../events/catalog.ts';
import { Labels, MANAGER } from '../runtime/labels.ts';
import { ISOLATED_JOB_STEPS, SCRIPTS_CONFIGMAP } from '../runtime/jobs.ts';
import { INTAKE_STEPS } from '../functions/registry.ts';
import { STORAGE_CONFIG_LABEL } from '../runtime/s3.ts';
import { renderEventPolicies } from './eventpolicies.ts';

export const ROUTE_EXTENSION = 'mlopsroute';
export const Routes = { schedule: 'schedule', watchdog: 'watchdog', training: 'training', copy: 'copy', gate: 'gate', promote: 'promote', predictor: 'predictor', argocd: 'argocd', storage: 'storage' } as const;
/** Where Argo CD Applications live; argocd-sync gets a Role there for them alone. */
export const ARGOCD_NAMESPACE = 'argocd';

export const BROKER_NAME = 'model-lifecycle';
export const CATALOG_CONFIGMAP = 'model-catalog';
export const SECRETS_NAME = 'model-lifecycle-secrets';
export const DEFAULT_IMAGE = 'quay.io/model-lifecycle/functions:0.1.0';
const APISERVER_SA = 'mlops-apiserversource';
const UPDATE = 'dev.knative.apiserver.resource.update';
const ADD = 'dev.knative.apiserver.resource.add';
const DELETE = 'dev.knative.apiserver.resource.delete';
const PING = 'dev.knative.sources.ping';
const REF_ADD = 'dev.knative.apiserver.ref.add';
const REF_UPDATE = 'dev.knative.apiserver.ref.update';

type Obj = Record<string, unknown>;
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

export interface RenderOptions {
  namespace: string;
  image: string;
  /** Repo root for config/jobs scripts and config/crds. */
  root?: string;
  /** Add Knative EventPolicies (config/eventpolicies.ts, docs/security.md). */
  senderAuth?: boolean;
}

/** What each step's code calls on the API, and nothing more (the e2e tests enforce exactly these). */
export const StepRules: Record<string, Rule[]> = {
  'drift-intake': [],
  'git-intake': [],
  'start-training': [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'create', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    // delete: a run that cannot create its NVJ (403) ends at once and frees its lock.
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update', 'delete'] },
    // Creating an owned object under OwnerReferencesPermissionEnforcement (OpenShift's default admission) needs
    // `delete` on it and, for blockOwnerDeletion, `update` on the owner's finalizers (docs/openshift.md).
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
  ],
  'track-training': [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['get'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  'copy-gpu-model': [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    // A Job that cannot start shows only as a FailedCreate Event on it (runtime/jobs.ts).
    { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  'gate-health': [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    // A Job that cannot start shows only as a FailedCreate Event on it (runtime/jobs.ts).
    { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  'restart-predictor': [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/finalizers'], verbs: ['update'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    // A Job that cannot start shows only as a FailedCreate Event on it (runtime/jobs.ts).
    { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    { apiGroups: ['serving.kserve.io'], resources: ['inferenceservices'], verbs: ['get', 'patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  'verify-endpoint': [
    // list: a predictor pod event is matched to the model's Verifying run through the ModelRuns' status.
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
  ],
  notify: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['get', 'create'] },
  ],
  watchdog: [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'patch', 'delete'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'delete'] },
    // list: the reconcile reads every unfinished run's world (docs/run-lifecycle.md); it writes none of it.
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['list', 'delete'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['list', 'delete'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: ['serving.kserve.io'], resources: ['inferenceservices'], verbs: ['list'] },
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
  ],
  'argocd-sync': [
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['get', 'list', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list', 'create', 'patch'] },
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'delete'] },
    { apiGroups: ['apps'], resources: ['deployments'], verbs: ['patch'] },
    { apiGroups: [''], resources: ['events'], verbs: ['create'] },
  ],
  'storage-bootstrap': [
    // Reads the storage Secret, and only that one (docs/storage.md); never writes it.
    { apiGroups: [''], resources: ['secrets'], verbs: ['get'], resourceNames: ['model-storage-config'] },
    // Its record (ConfigMap storage-bootstrap-status); `create` cannot be limited by name.
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'update'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'create'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    { apiGroups: ['serving.kserve.io'], resources: ['inferenceservices'], verbs: ['get', 'patch'] },
  ],
};

/** Rules a step needs in the Argo CD namespace (Applications live there, not beside the models). */
export const ArgocdRules: Record<string, Rule[]> = {
  'argocd-sync': [{ apiGroups: ['argoproj.io'], resources: ['applications'], verbs: ['get', 'patch'] }],
};

/** Steps that emit events themselves (K_SINK through the SinkBinding), not only as replies. */
const SINK_STEPS = ['drift-intake', 'git-intake', 'track-training', 'copy-gpu-model', 'gate-health', 'restart-predictor', 'verify-endpoint', 'watchdog', 'argocd-sync'];
const SECRET_ENV: Record<string, string[]> = {
  'drift-intake': ['DRIFT_INTAKE_TOKEN'],
  'git-intake': ['GITHUB_WEBHOOK_SECRET'],
  notify: ['SLACK_WEBHOOK_URL', 'SMTP_URL', 'SMTP_FROM'],
};

interface TriggerSpec { name: string; subscriber: string; filter: Record<string, string> }

/** Every Trigger: (subscriber, exact attribute filter). Event types come from the events catalog. */
export function triggerSpecs(): TriggerSpec[] {
  const t = (subscriber: string, suffix: string, filter: Record<string, string>): TriggerSpec => ({ name: `${subscriber}-${suffix}`, subscriber, filter });
  return [
    t('start-training', 'requested', { type: EventTypes.trainingRequested }),
    t('start-training', 'schedule', { type: PING, [ROUTE_EXTENSION]: Routes.schedule }),
    t('start-training', 'pipeline', { type: 'dev.tekton.event.pipelinerun.successful.v1' }),
    t('track-training', 'nvj', { type: UPDATE, [ROUTE_EXTENSION]: Routes.training }),
    t('copy-gpu-model', 'trained', { type: EventTypes.trainingSucceeded, profile: 'gpu' }),
    t('copy-gpu-model', 'job', { type: UPDATE, [ROUTE_EXTENSION]: Routes.copy }),
    t('gate-health', 'trained', { type: EventTypes.trainingSucceeded, profile: 'cpu' }),
    t('gate-health', 'copied', { type: EventTypes.modelCopied }),
    t('gate-health', 'job', { type: UPDATE, [ROUTE_EXTENSION]: Routes.gate }),
    t('restart-predictor', 'approved', { type: EventTypes.modelApproved }),
    t('restart-predictor', 'failed', { type: EventTypes.deploymentFailed }),
    t('restart-predictor', 'job', { type: UPDATE, [ROUTE_EXTENSION]: Routes.promote }),
    t('verify-endpoint', 'restarted', { type: EventTypes.predictorRestarted }),
    t('verify-endpoint', 'pod-added', { type: ADD, [ROUTE_EXTENSION]: Routes.predictor }),
    t('verify-endpoint', 'pod', { type: UPDATE, [ROUTE_EXTENSION]: Routes.predictor }),
    // A predictor pod going away (the end of an old pod's grace period) is a reason to look again too.
    t('verify-endpoint', 'pod-deleted', { type: DELETE, [ROUTE_EXTENSION]: Routes.predictor }),
    t('watchdog', 'tick', { type: PING, [ROUTE_EXTENSION]: Routes.watchdog }),
    // The watchdog's reconcile wakes one step for one run (docs/run-lifecycle.md).
    ...ReconcileTarget.options.map((step) => t(step, 'reconcile', { type: EventTypes.runReconcile, [Extensions.target]: step })),
    t('argocd-sync', 'nvj-added', { type: ADD, [ROUTE_EXTENSION]: Routes.argocd }),
    t('argocd-sync', 'nvj', { type: UPDATE, [ROUTE_EXTENSION]: Routes.argocd }),
    t('argocd-sync', 'nvj-deleted', { type: DELETE, [ROUTE_EXTENSION]: Routes.argocd }),
    t('storage-bootstrap', 'requested', { type: EventTypes.storageBootstrapRequested }),
    t('storage-bootstrap', 'tick', { type: PING, [ROUTE_EXTENSION]: Routes.watchdog }),
    t('storage-bootstrap', 'ref-added', { type: REF_ADD, [ROUTE_EXTENSION]: Routes.storage }),
    t('storage-bootstrap', 'ref', { type: REF_UPDATE, [ROUTE_EXTENSION]: Routes.storage }),
    ...(['trainingFailed', 'trainingSkipped', 'runFailed', 'modelRejected', 'deploymentFailed', 'deploymentRolledback', 'deploymentVerified', 'storageFailed'] as const)
      .map((k) => t('notify', EventTypes[k].slice('dev.mlops.'.length, -'.v1'.length).replace('.', '-'), { type: EventTypes[k] })),
  ];
}

const labels = (extra: Record<string, string> = {}): Record<string, string> => ({ [Labels.managedBy]: MANAGER, [Labels.partOf]: 'model-lifecycle', ...extra });
const serviceRef = (name: string, namespace: string): Obj => ({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name, namespace } });
const brokerRef = (namespace: string): Obj => ({ ref: { apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', name: BROKER_NAME, namespace } });

export function renderManifests(catalog: Catalog, opts: RenderOptions): Record<string, Obj[]> {
  const ns = opts.namespace;
  const meta = (name: string, extra: Record<string, string> = {}): Obj => ({ name, namespace: ns, labels: labels(extra) });
  const steps = Object.keys(StepRules);

  const services: Obj[] = steps.map((step) => ({
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: meta(step, {
      [Labels.step]: step,
      ...(SINK_STEPS.includes(step) ? { 'mlops.dev/sink-binding': 'broker' } : {}),
      // Only the webhook intakes are reachable from outside the cluster; the broker reaches the rest.
      ...((INTAKE_STEPS as readonly string[]).includes(step) ? {} : { 'networking.knative.dev/visibility': 'cluster-local' }),
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
              ...(SECRET_ENV[step] ?? []).map((key) => ({ name: key, valueFrom: { secretKeyRef: { name: SECRETS_NAME, key, optional: true } } })),
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
    const rules = StepRules[step] ?? [];
    if (rules.length === 0) continue; // the intakes touch no Kubernetes API at all
    rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(sa, { [Labels.step]: step }), rules });
    rbac.push({
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(sa, { [Labels.step]: step }),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
    });
  }
  for (const [step, rules] of Object.entries(ArgocdRules)) {
    const sa = `mlops-${step}`;
    const argoMeta = { name: sa, namespace: ARGOCD_NAMESPACE, labels: labels({ [Labels.step]: step }) };
    rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: argoMeta, rules });
    rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: argoMeta,
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa },
      subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }] });
  }
  // The identity the training notebooks run as (the NVJ's podConfig.serviceAccountName); it needs no API access.
  for (const sa of [...new Set(catalog.models.map((m) => m.serviceAccountName))].sort()) {
    rbac.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(sa, { [Labels.step]: 'training' }) });
  }
  // The ApiServerSource adapter lists and watches what it reports.
  rbac.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(APISERVER_SA) });
  rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(APISERVER_SA), rules: [
    { apiGroups: ['mlops.mlops.dev'], resources: ['notebookvalidationjobs'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    // storage-bootstrap's source: the storage Secret, by label, in Reference mode (the events carry no data).
    { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
  ] });
  rbac.push({ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(APISERVER_SA),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: APISERVER_SA },
    subjects: [{ kind: 'ServiceAccount', name: APISERVER_SA, namespace: ns }] });

  const broker: Obj = {
    apiVersion: 'eventing.knative.dev/v1', kind: 'Broker', metadata: meta(BROKER_NAME),
    spec: { delivery: { retry: 6, backoffPolicy: 'exponential', backoffDelay: 'PT0.5S', timeout: 'PT300S', deadLetterSink: serviceRef('notify', ns) } },
  };
  const triggers: Obj[] = triggerSpecs().map((t) => ({
    apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: meta(t.name, { [Labels.step]: t.subscriber }),
    spec: {
      broker: BROKER_NAME,
      filter: { attributes: t.filter },
      subscriber: serviceRef(t.subscriber, ns),
      // notify is the dead-letter sink: its own failures retry longer and never loop back into it.
      ...(t.subscriber === 'notify' ? { delivery: { retry: 10, backoffPolicy: 'exponential', backoffDelay: 'PT1S' } } : {}),
    },
  }));

  const pings: Obj[] = catalog.models.filter((m) => m.enabled && m.schedule).map((m) => ({
    apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: meta(`schedule-${m.name}`, { [Labels.model]: m.name }),
    spec: { schedule: m.schedule?.cron, timezone: m.schedule?.timezone, contentType: 'application/json', data: JSON.stringify({ model: m.name }),
      ceOverrides: { extensions: { [ROUTE_EXTENSION]: Routes.schedule } }, sink: brokerRef(ns) },
  }));
  pings.push({
    apiVersion: 'sources.knative.dev/v1', kind: 'PingSource', metadata: meta('watchdog-tick'),
    spec: { schedule: '* * * * *', timezone: 'UTC', contentType: 'application/json', data: '{"watchdog":true}',
      ceOverrides: { extensions: { [ROUTE_EXTENSION]: Routes.watchdog } }, sink: brokerRef(ns) },
  });

  const managed = { matchLabels: { [Labels.managedBy]: MANAGER } };
  const apiSource = (name: string, route: string, resource: Obj, mode: 'Resource' | 'Reference' = 'Resource', more: Obj[] = []): Obj => ({
    apiVersion: 'sources.knative.dev/v1', kind: 'ApiServerSource', metadata: meta(name),
    spec: { mode, serviceAccountName: APISERVER_SA, resources: [resource, ...more], ceOverrides: { extensions: { [ROUTE_EXTENSION]: route } }, sink: brokerRef(ns) },
  });
  const jobSelector = (steps: string[]): Obj => ({ matchLabels: { [Labels.managedBy]: MANAGER }, matchExpressions: [{ key: Labels.step, operator: 'In', values: steps }] });
  const apiSources: Obj[] = [
    apiSource('mlops-nvjs', Routes.training, { apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob', selector: managed }),
    // argocd-sync sees every NVJ in the namespace, not only ours (on-success triggers, waves, status).
    apiSource('mlops-all-nvjs', Routes.argocd, { apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' }),
    apiSource('mlops-copy-jobs', Routes.copy, { apiVersion: 'batch/v1', kind: 'Job', selector: jobSelector(['copy']) }),
    apiSource('mlops-gate-jobs', Routes.gate, { apiVersion: 'batch/v1', kind: 'Job', selector: jobSelector(['gate']) }),
    apiSource('mlops-promote-jobs', Routes.promote, { apiVersion: 'batch/v1', kind: 'Job', selector: jobSelector(['promote', 'rollback']) }),
    // Reference mode: the Secret's data never travels in an event (docs/storage.md).
    apiSource('mlops-storage', Routes.storage, { apiVersion: 'v1', kind: 'Secret', selector: { matchLabels: { [STORAGE_CONFIG_LABEL]: 'true' } } }, 'Reference',
      [{ apiVersion: 'batch/v1', kind: 'Job', selector: jobSelector(['storage-bootstrap']) }]),
    apiSource('mlops-predictor-pods', Routes.predictor, { apiVersion: 'v1', kind: 'Pod', selector: {
      matchExpressions: [{ key: 'serving.kserve.io/inferenceservice', operator: 'In', values: [...new Set(catalog.models.map((m) => m.inferenceService))].sort() }],
    } }),
  ];

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
  return files;
}

export function toYamlStream(objs: Obj[]): string {
  return objs.map((o) => stringify(o, { lineWidth: 0 })).join('---\n');
}
