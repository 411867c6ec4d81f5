// `mlops doctor [--namespace NS] [--output json]`: checks an install through the user's kubeconfig and prints one
// finding per line (ok / warn / FAIL, what, how to fix); exit 1 on any failure. What each check does and how to fix
// each finding: docs/doctor.md. It reads; the only writes are server-side dry runs (`dryRun=All`, nothing stored),
// and Secrets are read as metadata only (their values never reach this process's output).
import { randomUUID } from 'node:crypto';
import { ARGOCD_NAMESPACE, BROKER_NAME, CATALOG_CONFIGMAP, DEFAULT_IMAGE, SECRETS_NAME, renderManifests } from '../config/render.ts';
import { copyJobManifest } from '../functions/copy-gpu-model/manifests.ts';
import { gateJobManifest } from '../functions/gate-health/manifests.ts';
import { promoteJobManifest } from '../functions/restart-predictor/effects.ts';
import { modelRunManifest, nvjManifest } from '../functions/start-training/manifests.ts';
import { loadCatalog, type Catalog, type CatalogModel } from '../runtime/catalog.ts';
import type { KubeObject } from '../runtime/kube.ts';
import { Labels, MANAGER, runNameFor } from '../runtime/labels.ts';
import { Resources, resourcePath, type ModelRun } from '../runtime/resources.ts';
import { openKubeApi, statusMessage, type KubeApi } from './kubeapi.ts';

export const Levels = { ok: 'ok', warn: 'warn', fail: 'fail' } as const;
export type Level = (typeof Levels)[keyof typeof Levels];

export interface Finding {
  level: Level;
  check: string;
  what: string;
  fix?: string;
}

type Obj = Record<string, unknown>;
interface Kind { group: string; version: string; kind: string }

const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
const SA_USER = (ns: string, sa: string): string => `system:serviceaccount:${ns}:${sa}`;
const apiVersionOf = (k: Kind): string => (k.group ? `${k.group}/${k.version}` : k.version);
const groupPath = (group: string, version: string): string => (group ? `/apis/${group}/${version}` : `/api/${version}`);

/** Where each kind we need comes from, for the fix line. */
const PROVIDERS: Record<string, string> = {
  'lifecycle.mlops.dev': 'apply our CRD as cluster-admin: kubectl apply -f config/crds/modelrun.yaml',
  'mlops.mlops.dev': 'install the Jupyter Notebook Validator operator (>= v1.0.7), which serves NotebookValidationJob',
  'serving.kserve.io': 'install KServe (OpenShift AI single-model serving)',
  'serving.knative.dev': 'install Knative Serving (OpenShift Serverless: KnativeServing)',
  'eventing.knative.dev': 'install Knative Eventing (OpenShift Serverless: KnativeEventing)',
  'sources.knative.dev': 'install Knative Eventing (OpenShift Serverless: KnativeEventing) with its core sources',
};

class Discovery {
  readonly #cache = new Map<string, Map<string, string> | undefined>();
  readonly #api: KubeApi;
  constructor(api: KubeApi) { this.#api = api; }

  /** The plural serving `kind` in group/version, or undefined when it is not served. */
  async resource(k: Kind): Promise<string | undefined> {
    const key = `${k.group}/${k.version}`;
    if (!this.#cache.has(key)) {
      const r = await this.#api.request('GET', groupPath(k.group, k.version));
      const list = r.status === 200 ? (r.body as { resources?: Array<{ name: string; kind: string }> }).resources ?? [] : [];
      this.#cache.set(key, r.status === 200 ? new Map(list.filter((x) => !x.name.includes('/')).map((x) => [x.kind, x.name])) : undefined);
    }
    return this.#cache.get(key)?.get(k.kind);
  }

  /** The first served version of a group among `versions` that serves `kind`. */
  async firstServed(group: string, versions: string[], kind: string): Promise<{ version: string; plural: string } | undefined> {
    for (const version of versions) {
      const plural = await this.resource({ group, version, kind });
      if (plural) return { version, plural };
    }
    return undefined;
  }
}

function collectionPath(k: Kind, plural: string, ns: string): string {
  return `${groupPath(k.group, k.version)}/namespaces/${encodeURIComponent(ns)}/${plural}`;
}

/** Every leaf path of an object (keys may hold dots: `nvidia.com/gpu`), to tell what a server dropped. */
function leafPaths(v: unknown, at: Array<string | number>, out: Array<Array<string | number>>): Array<Array<string | number>> {
  if (Array.isArray(v)) v.forEach((x, i) => leafPaths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object' && Object.keys(v).length > 0) for (const [k, x] of Object.entries(v)) leafPaths(x, [...at, k], out);
  else out.push(at);
  return out;
}

function hasPath(obj: unknown, path: Array<string | number>): boolean {
  let cur: unknown = obj;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object' || !(String(part) in cur)) return false;
    cur = (cur as Record<string, unknown>)[String(part)];
  }
  return cur !== undefined;
}

const showPath = (path: Array<string | number>): string => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : /[./]/.test(p) ? `[${JSON.stringify(p)}]` : `${i === 0 ? '' : '.'}${p}`)).join('');

export interface DoctorOptions {
  api: KubeApi;
  catalog: Catalog;
  namespace: string;
}

/** Runs every check; never throws for what the cluster answers (an unreachable server is one failing finding). */
export async function diagnose(opts: DoctorOptions): Promise<Finding[]> {
  const { api, catalog, namespace: ns } = opts;
  const findings: Finding[] = [];
  const add = (level: Level, check: string, what: string, fix?: string): void => { findings.push({ level, check, what, ...(fix && level !== 'ok' ? { fix } : {}) }); };
  const disco = new Discovery(api);
  const rendered = renderManifests(catalog, { namespace: ns, image: DEFAULT_IMAGE });
  const models = catalog.models.filter((m) => m.enabled);

  try {
    const ver = await api.request('GET', '/version');
    if (ver.status === 401) { add('fail', 'access', `the API server at ${shownServer(api)} refused the kubeconfig's credentials (401)`, 'log in again (oc login / refresh the kubeconfig)'); return findings; }
  } catch (err) {
    add('fail', 'access', `cannot reach the API server at ${shownServer(api)}: ${(err as Error).message}`, 'check KUBECONFIG / the current context and that the cluster is reachable');
    return findings;
  }
  const nsr = await api.request('GET', `/api/v1/namespaces/${encodeURIComponent(ns)}`, { accept: METADATA_ONLY });
  if (nsr.status === 404) add('fail', 'namespace', `namespace ${ns} does not exist`, `kubectl create namespace ${ns}, then apply the rendered manifests (README "Install on a cluster")`);

  // ---- the catalog the functions run with is the one checked here
  const cm = await api.request('GET', resourcePath(Resources.configMap, ns, CATALOG_CONFIGMAP));
  const local = ((rendered['configmaps.yaml'] ?? []) as Obj[]).find((o) => (o.metadata as { name?: string }).name === CATALOG_CONFIGMAP)?.data as Record<string, string> | undefined;
  if (cm.status === 404) add('fail', 'catalog', `ConfigMap ${CATALOG_CONFIGMAP} (the functions' catalog) does not exist in ${ns}`, 'apply the rendered manifests: mlops render --namespace NS --out DIR && kubectl apply -f DIR/configmaps.yaml');
  else if (cm.status !== 200) add('warn', 'catalog', `cannot read ConfigMap ${CATALOG_CONFIGMAP}: ${statusMessage(cm)}`);
  else if ((cm.body as { data?: Record<string, string> }).data?.['models.yaml'] !== local?.['models.yaml']) {
    add('warn', 'catalog', `the cluster's catalog (ConfigMap ${CATALOG_CONFIGMAP}) differs from the local one these checks use`, 'render and apply the catalog you mean (mlops render), or point --catalog / MODEL_CATALOG at the deployed one');
  } else add('ok', 'catalog', `the cluster runs the catalog checked here (${models.length} enabled models)`);

  // ---- the kinds we use are served (discovery)
  const needed: Kind[] = [
    { group: Resources.modelRun.group, version: Resources.modelRun.version, kind: Resources.modelRun.kind },
    { group: Resources.notebookValidationJob.group, version: Resources.notebookValidationJob.version, kind: Resources.notebookValidationJob.kind },
    { group: Resources.inferenceService.group, version: Resources.inferenceService.version, kind: Resources.inferenceService.kind },
  ];
  for (const o of Object.values(rendered).flat() as Obj[]) {
    const [group = '', version = ''] = String(o.apiVersion).includes('/') ? String(o.apiVersion).split('/') : ['', String(o.apiVersion)];
    const k = { group, version, kind: String(o.kind) };
    if (group.endsWith('knative.dev') && !needed.some((n) => apiVersionOf(n) === apiVersionOf(k) && n.kind === k.kind)) needed.push(k);
  }
  const served = new Map<string, string>();
  for (const k of needed) {
    const plural = await disco.resource(k);
    if (plural) { served.set(`${apiVersionOf(k)} ${k.kind}`, plural); add('ok', 'api', `${k.kind} (${apiVersionOf(k)}) is served`); }
    else add('fail', 'api', `${k.kind} (${apiVersionOf(k)}) is not served by this cluster`, PROVIDERS[k.group] ?? 'install the operator that provides it');
  }
  const isServed = (apiVersion: string, kind: string): boolean => served.has(`${apiVersion} ${kind}`);

  // ---- the Broker is Ready
  if (isServed('eventing.knative.dev/v1', 'Broker')) {
    const r = await api.request('GET', `/apis/eventing.knative.dev/v1/namespaces/${ns}/brokers/${BROKER_NAME}`);
    if (r.status === 404) add('fail', 'broker', `Broker ${BROKER_NAME} does not exist in ${ns}`, 'apply the rendered manifests: mlops render --namespace NS --out DIR && kubectl apply -f DIR/knative/broker.yaml');
    else if (r.status !== 200) add('warn', 'broker', `cannot read Broker ${BROKER_NAME}: ${statusMessage(r)}`, 'run the doctor as a user who may get brokers in the namespace');
    else {
      const cond = ((r.body as { status?: { conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }> } }).status?.conditions ?? []).find((c) => c.type === 'Ready');
      if (cond?.status === 'True') add('ok', 'broker', `Broker ${BROKER_NAME} is Ready`);
      else add('fail', 'broker', `Broker ${BROKER_NAME} is not Ready${cond ? ` (${[cond.reason, cond.message].filter(Boolean).join(': ')})` : ' (no Ready condition yet)'}`, 'kubectl describe broker; check the Knative Eventing installation (kafka/MT channel-based broker class) and its events');
    }
  }

  // ---- each function's Knative Service is Ready (a Service that is not cannot receive its events)
  if (isServed('serving.knative.dev/v1', 'Service')) {
    for (const svc of (rendered['knative/services.yaml'] ?? []) as Obj[]) {
      const name = (svc.metadata as { name: string }).name;
      const r = await api.request('GET', `/apis/serving.knative.dev/v1/namespaces/${ns}/services/${name}`);
      if (r.status === 404) { add('fail', 'function', `Knative Service ${name} does not exist in ${ns}`, 'apply the rendered manifests: mlops render --namespace NS --image IMAGE --out DIR && kubectl apply -f DIR/knative/services.yaml'); continue; }
      if (r.status !== 200) { add('warn', 'function', `cannot read Knative Service ${name}: ${statusMessage(r)}`); continue; }
      const cond = ((r.body as { status?: { conditions?: Array<{ type?: string; status?: string; reason?: string; message?: string }> } }).status?.conditions ?? []).find((c) => c.type === 'Ready');
      if (cond?.status === 'True') add('ok', 'function', `Knative Service ${name} is Ready`);
      else add('fail', 'function', `Knative Service ${name} is not Ready${cond ? ` (${[cond.reason, cond.message].filter(Boolean).join(': ')})` : ' (no Ready condition yet)'}`, `kubectl -n ${ns} describe ksvc ${name}: usually the image cannot be pulled or the pod does not start (its events and the revision's pods say why)`);
    }
  }

  // ---- each catalog model's InferenceService exists
  if (isServed(Resources.inferenceService.apiVersion, Resources.inferenceService.kind)) {
    for (const m of models) {
      const r = await api.request('GET', resourcePath(Resources.inferenceService, ns, m.inferenceService), { accept: METADATA_ONLY });
      if (r.status === 200) add('ok', 'inferenceservice', `InferenceService ${m.inferenceService} (model ${m.name}) exists`);
      else if (r.status === 404) add('fail', 'inferenceservice', `InferenceService ${m.inferenceService} (model ${m.name}) does not exist in ${ns}`, `create it (predictor mounting ${m.storage.pvc}, --model_dir=/mnt/models/${m.name}); see README "Install on a cluster"`);
      else add('warn', 'inferenceservice', `cannot read InferenceService ${m.inferenceService}: ${statusMessage(r)}`);
    }
  }

  // ---- the PVCs are Bound
  const claims = new Map<string, string>();
  for (const m of models) {
    claims.set(m.storage.pvc, m.name);
    if (m.profile === 'gpu') claims.set(m.storage.gpuPvc, m.name);
  }
  for (const [claim, model] of [...claims.entries()].sort()) {
    const r = await api.request('GET', resourcePath(Resources.persistentVolumeClaim, ns, claim));
    if (r.status === 404) { add('fail', 'pvc', `PersistentVolumeClaim ${claim} (model ${model}) does not exist in ${ns}`, 'create it: kubectl apply -f config/examples/pvcs.yaml (adjust storage classes and sizes)'); continue; }
    if (r.status !== 200) { add('warn', 'pvc', `cannot read PersistentVolumeClaim ${claim}: ${statusMessage(r)}`); continue; }
    const pvc = r.body as { spec?: { storageClassName?: string }; status?: { phase?: string } };
    const phase = pvc.status?.phase ?? 'Pending';
    if (phase === 'Bound') { add('ok', 'pvc', `PersistentVolumeClaim ${claim} is Bound`); continue; }
    // WaitForFirstConsumer storage binds when the first pod mounts the claim: Pending is then expected.
    const sc = pvc.spec?.storageClassName ? await api.request('GET', `/apis/storage.k8s.io/v1/storageclasses/${pvc.spec.storageClassName}`) : undefined;
    const waits = (sc?.body as { volumeBindingMode?: string } | undefined)?.volumeBindingMode === 'WaitForFirstConsumer';
    if (waits && phase === 'Pending') add('warn', 'pvc', `PersistentVolumeClaim ${claim} is Pending until its first pod (storage class ${pvc.spec?.storageClassName ?? ''} binds on first use)`);
    else add('fail', 'pvc', `PersistentVolumeClaim ${claim} is ${phase}, not Bound`, `kubectl describe pvc ${claim} -n ${ns}: check its storage class and provisioner (CephFS RWX for ${catalog.models[0]?.storage.pvc ?? 'the shared claim'})`);
  }

  // ---- the secrets exist (metadata only: values are never requested as data)
  const secretNames = new Map<string, string>([[SECRETS_NAME, 'the functions\' webhook tokens and notification channels']]);
  for (const m of models) {
    secretNames.set(m.storage.configSecret, `the environment of ${m.name}'s training pods (envFrom)`);
    if (m.notebook.credentialsSecret) secretNames.set(m.notebook.credentialsSecret, `git credentials of ${m.name}'s notebook`);
  }
  for (const [name, use] of secretNames) {
    const r = await api.request('GET', resourcePath(Resources.secret, ns, name), { accept: METADATA_ONLY });
    if (r.status === 200) add('ok', 'secret', `Secret ${name} exists (${use})`);
    else if (r.status === 404) add('fail', 'secret', `Secret ${name} does not exist in ${ns} (${use})`, 'create it from config/examples/secrets-example.yaml or with the External Secrets Operator (config/examples/external-secrets.yaml)');
    else add('warn', 'secret', `cannot check Secret ${name}: ${statusMessage(r)}`, 'run the doctor as a user who may get secrets in the namespace');
  }

  // ---- every function ServiceAccount may do what its Role grants (one SubjectAccessReview per verb)
  await checkRoles(api, rendered['rbac/roles.yaml'] ?? [], add);

  // ---- dry-run creates as each creator, Pod Security of the Jobs' pods
  const openshift = Boolean(await disco.resource({ group: 'security.openshift.io', version: 'v1', kind: 'PodSecurityPolicySubjectReview' }));
  for (const m of models) await dryRuns(api, m, ns, { isServed, openshift }, add);

  // ---- leftovers of the platform this replaces
  await leftovers(api, disco, catalog, ns, add);
  return findings;
}

type Add = (level: Level, check: string, what: string, fix?: string) => void;

async function checkRoles(api: KubeApi, rbac: Obj[], add: Add): Promise<void> {
  const roles = rbac.filter((o) => o.kind === 'Role');
  const bindings = rbac.filter((o) => o.kind === 'RoleBinding');
  for (const role of roles) {
    const meta = role.metadata as { name: string; namespace: string };
    const binding = bindings.find((b) => (b.metadata as { namespace: string }).namespace === meta.namespace && (b.roleRef as { name: string }).name === meta.name);
    const subjects = ((binding?.subjects ?? []) as Array<{ kind: string; name: string; namespace?: string }>).filter((s) => s.kind === 'ServiceAccount');
    for (const s of subjects) {
      const user = SA_USER(s.namespace ?? meta.namespace, s.name);
      const missing: string[] = [];
      let checked = 0;
      for (const rule of (role.rules ?? []) as Array<{ apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }>) {
        // A rule limited to named objects is checked for those names (a review without a name would be denied).
        for (const group of rule.apiGroups) for (const res of rule.resources) for (const verb of rule.verbs) for (const name of rule.resourceNames ?? [undefined]) {
          const [resource = '', subresource] = res.split('/');
          const r = await api.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', { body: {
            apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
            spec: { user, groups: ['system:serviceaccounts', `system:serviceaccounts:${s.namespace ?? meta.namespace}`, 'system:authenticated'],
              resourceAttributes: { namespace: meta.namespace, verb, group, resource, ...(subresource ? { subresource } : {}), ...(name ? { name } : {}) } },
          } });
          if (r.status === 403) { add('warn', 'rbac', `cannot check what ${s.name} may do: ${statusMessage(r)}`, 'run the doctor as a user who may create subjectaccessreviews (cluster-admin)'); return; }
          if (r.status !== 201 && r.status !== 200) { add('warn', 'rbac', `SubjectAccessReview failed: ${statusMessage(r)}`); return; }
          checked++;
          if ((r.body as { status?: { allowed?: boolean } }).status?.allowed !== true) missing.push(`${verb} ${group ? `${res}.${group}` : res}`);
        }
      }
      const where = meta.namespace;
      if (missing.length === 0) add('ok', 'rbac', `ServiceAccount ${s.name} may do all ${checked} things its Role ${meta.name} grants in ${where}`);
      else add('fail', 'rbac', `ServiceAccount ${s.name} may not ${missing.join(', ')} in ${where} (its Role ${meta.name} should grant it)`, 'apply the rendered Roles and RoleBindings again: mlops render --namespace NS --out DIR && kubectl apply -f DIR/rbac/roles.yaml');
    }
  }
  // The Argo CD namespace's Role only matters where argocd-sync is used; its SAR findings say so by name.
  void ARGOCD_NAMESPACE;
}

async function dryRun(api: KubeApi, path: string, body: KubeObject, as?: string): Promise<{ ok: true; object: Obj } | { ok: false; status: number; message: string }> {
  const r = await api.request('POST', path, { body, query: { dryRun: 'All' }, ...(as ? { as: { user: as } } : {}) });
  if (r.status === 200 || r.status === 201) return { ok: true, object: r.body as Obj };
  // AlreadyExists comes from storage, after admission passed: the object would have been accepted.
  if (r.status === 409 && (r.body as { reason?: string } | undefined)?.reason === 'AlreadyExists') return { ok: true, object: body };
  return { ok: false, status: r.status, message: statusMessage(r) };
}

async function dryRuns(api: KubeApi, m: CatalogModel, ns: string, ctx: { isServed: (apiVersion: string, kind: string) => boolean; openshift: boolean }, add: Add): Promise<void> {
  if (!ctx.isServed(Resources.modelRun.apiVersion, Resources.modelRun.kind)) return;
  const run = runNameFor(m.name, 'mlops-doctor-dry-run');
  const asStep = (step: string): string => SA_USER(ns, `mlops-${step}`);
  const manifest = modelRunManifest(run, { model: m.name, trigger: 'manual', requestedBy: 'mlops-doctor' }, m, 'mlops-doctor-dry-run');
  const mr = await dryRun(api, resourcePath(Resources.modelRun, ns), { ...manifest, apiVersion: Resources.modelRun.apiVersion, kind: Resources.modelRun.kind, metadata: { ...manifest.metadata, namespace: ns } }, asStep('start-training'));
  if (!mr.ok) { add(levelFor(mr.message), 'dry-run', `start-training cannot create a ModelRun for ${m.name}: ${mr.message}`, fixFor(mr.status, mr.message)); return; }
  add('ok', 'dry-run', `start-training may create a ModelRun for ${m.name}`);
  // The owner the run's objects point at: the dry-run answer carries the uid a real create would have.
  const owner = { ...(mr.object as unknown as ModelRun), metadata: { ...(mr.object.metadata as object), name: run, uid: (mr.object.metadata as { uid?: string } | undefined)?.uid ?? randomUUID() } } as ModelRun;

  if (ctx.isServed(Resources.notebookValidationJob.apiVersion, Resources.notebookValidationJob.kind)) {
    for (const profile of m.profile === 'gpu' ? ['gpu'] as const : ['cpu'] as const) {
      const nvj = nvjManifest({ ...owner, spec: { ...owner.spec, profile } }, m);
      const body: KubeObject = { ...nvj, apiVersion: Resources.notebookValidationJob.apiVersion, kind: Resources.notebookValidationJob.kind, metadata: { ...nvj.metadata, namespace: ns } };
      const r = await dryRun(api, resourcePath(Resources.notebookValidationJob, ns), body, asStep('start-training'));
      if (!r.ok) { add(levelFor(r.message), 'dry-run', `start-training cannot create the ${profile.toUpperCase()} NotebookValidationJob of ${m.name}: ${r.message}`, fixFor(r.status, r.message)); continue; }
      // A field the operator's CRD does not know is pruned silently: the notebook would run without it.
      const dropped = leafPaths(body.spec, ['spec'], []).filter((p) => !hasPath(r.object, p)).map(showPath);
      if (dropped.length > 0) add('fail', 'crd-fields', `the NotebookValidationJob CRD drops ${dropped.slice(0, 6).join(', ')}${dropped.length > 6 ? ` and ${dropped.length - 6} more` : ''} (model ${m.name})`, 'upgrade the Jupyter Notebook Validator operator (>= v1.0.7 for tolerations/nodeSelector)');
      else add('ok', 'dry-run', `start-training may create the ${profile.toUpperCase()} NotebookValidationJob of ${m.name}; the CRD keeps every field we set`);
    }
  }

  const jobs: Array<[string, KubeObject]> = [
    ['gate-health', gateJobManifest(owner, m)],
    ['restart-predictor', promoteJobManifest(owner, m, 'promote', run, 'staging')],
    ...(m.profile === 'gpu' ? [['copy-gpu-model', copyJobManifest(owner, m)] as [string, KubeObject]] : []),
  ];
  for (const [step, job] of jobs) {
    const name = job.metadata?.name ?? '';
    const r = await dryRun(api, resourcePath(Resources.job, ns), { ...job, apiVersion: 'batch/v1', kind: 'Job', metadata: { ...job.metadata, namespace: ns } }, asStep(step));
    if (!r.ok) add(levelFor(r.message), 'dry-run', `${step} cannot create Job ${name} (model ${m.name}): ${r.message}`, fixFor(r.status, r.message));
    else add('ok', 'dry-run', `${step} may create Job ${name} (model ${m.name})`);
    // The Job controller creates its pod: Pod Security admission judges the template, not our ServiceAccounts.
    const template = ((job.spec as { template?: { metadata?: Obj; spec?: Obj } } | undefined)?.template) ?? {};
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { ...(template.metadata ?? {}), name: `${name}-doctor`, namespace: ns }, spec: template.spec ?? {} };
    const p = await dryRun(api, resourcePath(Resources.pod, ns), pod);
    if (p.ok) add('ok', 'pod-security', `the pod of Job ${name} is admitted (Pod Security) in ${ns}`);
    else if (p.status === 403 && /cannot create resource "pods"/.test(p.message)) add('warn', 'pod-security', `cannot check the pod of Job ${name}: ${p.message}`, 'run the doctor as a user who may create pods in the namespace');
    else add('fail', 'pod-security', `the pod of Job ${name} would be rejected: ${p.message}`, 'the Job would be created but never start (FailedCreate): make its pod template meet Pod Security "restricted", or label the namespace for the level it needs');
    if (ctx.openshift) {
      const sa = (template.spec as { serviceAccountName?: string } | undefined)?.serviceAccountName ?? 'default';
      const review = await api.request('POST', `/apis/security.openshift.io/v1/namespaces/${ns}/podsecuritypolicysubjectreviews`, { body: {
        apiVersion: 'security.openshift.io/v1', kind: 'PodSecurityPolicySubjectReview',
        spec: { template: { metadata: template.metadata ?? {}, spec: { ...(template.spec ?? {}), serviceAccountName: sa } },
          user: SA_USER(ns, sa), groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'] },
      } });
      const status = (review.body as { status?: { allowedBy?: { name?: string }; reason?: string } } | undefined)?.status;
      if (review.status !== 201 && review.status !== 200) add('warn', 'scc', `cannot review the SCC of Job ${name}'s pod: ${statusMessage(review)}`);
      else if (status?.allowedBy?.name) add('ok', 'scc', `the pod of Job ${name} runs under SCC ${status.allowedBy.name} as ServiceAccount ${sa}`);
      else add('fail', 'scc', `no SecurityContextConstraints admit the pod of Job ${name} as ServiceAccount ${sa}${status?.reason ? ` (${status.reason})` : ''}`, 'make the template meet restricted-v2 (non-root, no privilege escalation, drop ALL, seccomp RuntimeDefault)');
    }
  }
}

/** Not being allowed to impersonate says nothing about the install: the check could not be made. */
const levelFor = (message: string): Level => (/cannot impersonate/.test(message) ? 'warn' : 'fail');

function fixFor(status: number, message = ''): string {
  if (status === 403 && /cannot impersonate/.test(message)) return 'run the doctor as a user who may impersonate the function ServiceAccounts (verb impersonate on serviceaccounts; cluster-admin can)';
  if (status === 403) return 'a Role lacks what the create needs (OpenShift owner references need update on modelruns/finalizers): apply the rendered Roles again, or grant the doctor impersonation (cluster-admin)';
  if (status === 422 || status === 400) return 'the CRD or an admission webhook rejects the object: check the operator version and the message';
  return 'check the API server and admission webhooks';
}

// ---- leftovers of the old platform (its weekly training CronJobs, Tekton triggers and pipelines)

const ours = (o: Obj): boolean => {
  const labels = ((o.metadata as { labels?: Record<string, string> } | undefined)?.labels) ?? {};
  return labels[Labels.managedBy] === MANAGER || labels['mlops.dev/retrain-model'] !== undefined;
};

/** Does this object train one of our models: names a catalog model or notebook, or runs a notebook? */
function trainsOurModels(catalog: Catalog, text: string): string | undefined {
  for (const m of catalog.models) {
    if (new RegExp(`(^|[^a-z0-9-])${m.name.replace(/[-.]/g, '\\$&')}([^a-z0-9-]|$)`).test(text)) return m.name;
    if (text.includes(m.notebook.path)) return m.name;
  }
  if (/\.ipynb\b/.test(text)) return 'a notebook';
  return undefined;
}

async function leftovers(api: KubeApi, disco: Discovery, catalog: Catalog, ns: string, add: Add): Promise<void> {
  let found = 0;
  const cron = await api.request('GET', `/apis/batch/v1/namespaces/${ns}/cronjobs`);
  if (cron.status === 200) {
    for (const cj of ((cron.body as { items?: Obj[] }).items ?? [])) {
      if (ours(cj)) continue;
      const name = (cj.metadata as { name?: string }).name ?? '';
      const spec = (cj.spec ?? {}) as { suspend?: boolean; jobTemplate?: unknown };
      const what = trainsOurModels(catalog, JSON.stringify({ labels: (cj.metadata as { labels?: object }).labels, jobTemplate: spec.jobTemplate }));
      if (!what) continue;
      found++;
      if (spec.suspend === true) add('ok', 'cut-over', `CronJob ${name} of the old platform (trains ${what}) is suspended`);
      else add('fail', 'cut-over', `CronJob ${name} of the old platform still trains ${what} (not suspended): two systems would write the model`, `suspend it (do not delete it until the cut-over is verified): kubectl -n ${ns} patch cronjob ${name} -p '{"spec":{"suspend":true}}'`);
    }
  } else if (cron.status !== 404) add('warn', 'cut-over', `cannot list CronJobs: ${statusMessage(cron)}`);

  const tekton: Array<{ group: string; versions: string[]; kind: string; fix: string }> = [
    { group: 'tekton.dev', versions: ['v1', 'v1beta1'], kind: 'Pipeline', fix: 'remove the old training Pipeline (or disable it in the old platform\'s Argo CD Application); a pipeline that should retrain through us instead gets the label mlops.dev/retrain-model=MODEL and does not train itself' },
    { group: 'triggers.tekton.dev', versions: ['v1beta1', 'v1alpha1'], kind: 'EventListener', fix: 'remove the EventListener (or its training trigger) of the old platform' },
    { group: 'triggers.tekton.dev', versions: ['v1beta1', 'v1alpha1'], kind: 'Trigger', fix: 'remove the old platform\'s training Trigger' },
    { group: 'triggers.tekton.dev', versions: ['v1beta1', 'v1alpha1'], kind: 'TriggerTemplate', fix: 'remove the old platform\'s training TriggerTemplate' },
  ];
  for (const t of tekton) {
    const s = await disco.firstServed(t.group, t.versions, t.kind);
    if (!s) continue; // not installed: nothing of that kind can train anything
    const r = await api.request('GET', collectionPath({ group: t.group, version: s.version, kind: t.kind }, s.plural, ns));
    if (r.status !== 200) { add('warn', 'cut-over', `cannot list ${t.kind}s: ${statusMessage(r)}`); continue; }
    for (const o of ((r.body as { items?: Obj[] }).items ?? [])) {
      if (ours(o)) continue;
      const name = (o.metadata as { name?: string }).name ?? '';
      const what = trainsOurModels(catalog, JSON.stringify({ name, labels: (o.metadata as { labels?: object }).labels, spec: o.spec }));
      const training = what ?? (t.kind === 'Pipeline' && /train/i.test(name) ? 'models' : undefined);
      if (!training) continue;
      found++;
      add('fail', 'cut-over', `${t.kind} ${name} of the old platform trains ${training}`, t.fix);
    }
  }
  if (found === 0) add('ok', 'cut-over', `no CronJob or Tekton object of the old platform trains a catalog model in ${ns}`);
}

// ---- the command

/** The server URL without a credential in its path (the local emulator's kubeconfigs carry one for kubectl's sake). */
function shownServer(api: KubeApi): string {
  return api.server.replace(/\/auth\/[^/]+$/, '');
}

export function formatFinding(f: Finding): string {
  const level = f.level === 'fail' ? 'FAIL' : f.level;
  return `${level.padEnd(4)}  ${f.check.padEnd(16)} ${f.what}${f.fix ? `\n      fix: ${f.fix}` : ''}`;
}

export async function runDoctor(opts: {
  env: Readonly<Record<string, string | undefined>>;
  namespace?: string | undefined;
  output?: string | undefined;
  catalogPath?: string | undefined;
  write?: (text: string) => void;
}): Promise<number> {
  const write = opts.write ?? ((t: string) => { process.stdout.write(t); });
  if (opts.output !== undefined && opts.output !== 'json' && opts.output !== 'text') throw new Error('--output must be json or text');
  const catalog = loadCatalog(opts.catalogPath ?? opts.env.MODEL_CATALOG ?? 'config/models.yaml');
  const api = openKubeApi();
  const namespace = opts.namespace ?? opts.env.NAMESPACE ?? api.namespace;
  const findings = await diagnose({ api, catalog, namespace });
  if (opts.output === 'json') write(`${JSON.stringify(findings, null, 2)}\n`);
  else {
    write(`mlops doctor: ${shownServer(api)} namespace ${namespace}\n`);
    for (const f of findings) write(`${formatFinding(f)}\n`);
    const fails = findings.filter((f) => f.level === 'fail').length;
    const warns = findings.filter((f) => f.level === 'warn').length;
    write(`${fails === 0 ? 'ok' : 'FAIL'}: ${fails} failing, ${warns} warning, ${findings.length - fails - warns} ok\n`);
  }
  return findings.some((f) => f.level === 'fail') ? 1 : 0;
}
