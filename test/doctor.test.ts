// `mlops doctor` as a user runs it (the real command in a child process, through a kubeconfig) against the local
// cluster: a complete install passes; a broken one fails and names each problem; Secret values never show. Also
// the emulator's side of it: impersonation, access reviews, metadata-only reads, the OpenShift SCC review, and
// `kubectl auth can-i --as`.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_NAMESPACE, startLocal, type Local } from '../dev/local.ts';
import { startEmulator, type Emulator } from '../dev/emulator/index.ts';
import { WIDGET_GROUP, widgetCrd } from '../dev/emulator/testkit.ts';
import { renderManifests } from '../config/render.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import type { Finding } from '../cli/doctor.ts';

const KUBECTL = process.env.KUBECTL ?? '/usr/bin/kubectl';
const catalog = loadCatalog('config/models.yaml');

interface Run { code: number; stdout: string; stderr: string }

function run(file: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, timeout: 150_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as { code?: unknown }).code !== 'number') { reject(new Error(`could not run ${file}: ${err.message}`)); return; }
      resolve({ code: err ? Number((err as { code?: number }).code) : 0, stdout, stderr });
    });
  });
}

const doctor = (kubeconfig: string, extra: string[] = []): Promise<Run> =>
  run(process.execPath, ['bin/mlops.js', 'doctor', '--namespace', DEV_NAMESPACE, ...extra], { KUBECONFIG: kubeconfig, HOME: tmpdir() });

describe('mlops doctor against the local cluster', () => {
  let local: Local;
  beforeAll(async () => {
    local = await startLocal({ catalog, scenario: 'happy', env: {} });
  }, 60_000);
  afterAll(async () => { await local.close(); });

  test('a complete install (mlops dev) passes: exit 0, no failing finding', async () => {
    const r = await doctor(local.kubeconfigPath);
    expect(r.stdout).not.toMatch(/^FAIL/m);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok +broker +Broker model-lifecycle is Ready$/m);
    expect(r.stdout).toMatch(/^ok +function +Knative Service gate-health is Ready$/m);
    expect(r.stdout).toMatch(/^ok +rbac +ServiceAccount mlops-start-training may do all \d+ things/m);
    expect(r.stdout).toMatch(/^ok +dry-run +start-training may create the GPU NotebookValidationJob of predictive-analytics; the CRD keeps every field we set$/m);
    expect(r.stdout).toMatch(/^ok +scc +the pod of Job .*-gate runs under SCC restricted-v2/m);
    // The dry runs stored nothing and every impersonated request was authorised as that ServiceAccount.
    expect(local.emulator.store.list({ apiVersion: 'batch/v1', kind: 'Job' }, { namespace: DEV_NAMESPACE }).filter((j) => j.metadata.name.includes('doctor'))).toEqual([]);
    const impersonated = local.emulator.requests.filter((q) => q.user === `system:serviceaccount:${DEV_NAMESPACE}:mlops-gate-health` && q.resource === 'jobs' && q.verb === 'create');
    expect(impersonated.map((q) => q.status)).toEqual(expect.arrayContaining([201]));
    for (const value of Object.values(local.secrets)) expect(r.stdout + r.stderr).not.toContain(value);
  }, 150_000);

  test('a broken install fails (exit 1) and names each problem; Secret values never appear', async () => {
    const store = local.emulator.store;
    const ns = DEV_NAMESPACE;
    // A missing CRD: the NVJ operator is not installed.
    store.delete({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition' }, { name: 'notebookvalidationjobs.mlops.mlops.dev' });
    // A Role without a permission it promises: the finalizers rule where the Roles have one (OpenShift owner
    // references), else the Lease rule start-training needs for the model lock.
    const roleSel = { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role' } as const;
    const role = store.read(roleSel, { name: 'mlops-start-training', namespace: ns });
    const rules = role.rules as Array<{ resources: string[]; verbs: string[] }>;
    const victim = rules.find((x) => x.resources.includes('modelruns/finalizers')) ?? rules.find((x) => x.resources.includes('leases'));
    expect(victim).toBeDefined();
    store.update(roleSel, { ...role, rules: rules.filter((x) => x !== victim) });
    // A missing secret.
    store.delete({ apiVersion: 'v1', kind: 'Secret' }, { name: 'model-storage-config', namespace: ns });
    // An unbound PVC.
    const pvc = store.read({ apiVersion: 'v1', kind: 'PersistentVolumeClaim' }, { name: 'model-storage-pvc', namespace: ns });
    store.updateStatus({ apiVersion: 'v1', kind: 'PersistentVolumeClaim' }, { ...pvc, status: { phase: 'Pending' } });
    // Leftovers of the old platform: its weekly training CronJob, shaped like KubeHeal/openshift-aiops-platform
    // charts/hub/templates/tekton-model-training-cronjobs.yaml at 07af6581 (script shortened; namespace adapted), one
    // unsuspended and one already suspended (the cut-over step done).
    const cronJob = (name: string, model: string, suspend: boolean): object => ({
      apiVersion: 'batch/v1', kind: 'CronJob',
      metadata: { name, namespace: ns, labels: { 'app.kubernetes.io/part-of': 'model-training', 'model-name': model } },
      spec: { schedule: '0 2 * * 0', concurrencyPolicy: 'Forbid', suspend, jobTemplate: { spec: { template: { spec: { serviceAccountName: 'pipeline', restartPolicy: 'OnFailure', containers: [{
        name: 'trigger-training', image: 'image-registry.openshift-image-registry.svc:5000/openshift/cli:latest',
        command: ['/bin/bash', '-c', `oc create -f - <<EOF\napiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  generateName: train-${model}-\nspec:\n  pipelineRef:\n    name: model-training-pipeline\n  params:\n    - name: model-name\n      value: "${model}"\nEOF`],
      }] } } } } },
    });
    // An on-call engineer paused one model during an incident (docs/day2.md): the doctor says so (a warning).
    await local.emulator.applyManifests([{ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'model-controls-predictive-analytics', namespace: ns },
      data: { paused: 'true', pausedBy: 'oncall@example.com', pausedAt: '2026-11-29T01:00:00Z', reason: 'INC-7 GPU node drained' } }]);
    await local.emulator.applyManifests([
      cronJob('weekly-anomaly-detector-training', 'anomaly-detector', false),
      cronJob('weekly-predictive-analytics-training', 'predictive-analytics', true),
    ]);

    // Its Tekton training Pipeline (KubeHeal/openshift-aiops-platform charts/hub/templates/tekton-model-training-pipeline.yaml,
    // trimmed to its params and first task), under Tekton's Pipeline CRD (tektoncd/pipeline config/300-crds/300-pipeline.yaml,
    // trimmed to names, scope and versions); and a pipeline of the user's that only asks us to retrain (not a leftover).
    await local.emulator.applyManifests([{
      apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'pipelines.tekton.dev' },
      spec: { group: 'tekton.dev', scope: 'Namespaced', names: { kind: 'Pipeline', plural: 'pipelines', singular: 'pipeline', categories: ['tekton', 'tekton-pipelines'] },
        versions: ['v1beta1', 'v1'].map((name) => ({ name, served: true, storage: name === 'v1', subresources: { status: {} }, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } })) },
    }]);
    await local.emulator.applyManifests([
      { apiVersion: 'tekton.dev/v1', kind: 'Pipeline', metadata: { name: 'model-training-pipeline', namespace: ns, labels: { 'app.kubernetes.io/part-of': 'model-training' } },
        spec: { params: [{ name: 'model-name', type: 'string' }, { name: 'notebook-path', type: 'string' }], tasks: [{ name: 'train-model', taskRef: { name: 'run-notebook-validation' }, params: [{ name: 'model-name', value: '$(params.model-name)' }] }] } },
      { apiVersion: 'tekton.dev/v1', kind: 'Pipeline', metadata: { name: 'refresh-features', namespace: ns, labels: { 'mlops.dev/retrain-model': 'anomaly-detector' } },
        spec: { tasks: [{ name: 'features', taskRef: { name: 'build-features' }, params: [{ name: 'model', value: 'anomaly-detector' }] }] } },
    ]);

    const r = await doctor(local.kubeconfigPath);
    expect(r.code).toBe(1);
    const out = r.stdout;
    expect(out).toMatch(/^FAIL +api +NotebookValidationJob \(mlops\.mlops\.dev\/v1alpha1\) is not served/m);
    const missingVerb = victim?.resources.includes('modelruns/finalizers') ? 'update modelruns/finalizers.lifecycle.mlops.dev' : 'create leases.coordination.k8s.io';
    expect(out).toMatch(new RegExp(`^FAIL +rbac +ServiceAccount mlops-start-training may not .*${missingVerb.replace(/[./]/g, '\\$&')}`, 'm'));
    expect(out).toMatch(/^FAIL +secret +Secret model-storage-config does not exist/m);
    expect(out).toMatch(/^FAIL +pvc +PersistentVolumeClaim model-storage-pvc is Pending, not Bound/m);
    expect(out).toMatch(/^FAIL +cut-over +CronJob weekly-anomaly-detector-training of the old platform still trains anomaly-detector/m);
    expect(out).toMatch(/^warn +controls +predictive-analytics is paused by oncall@example\.com at 2026-11-29T01:00:00Z: INC-7 GPU node drained: no trigger trains it$/m);
    expect(out).toMatch(/^ok +controls +anomaly-detector is neither paused nor pinned$/m);
    expect(out).toMatch(/^ok +cut-over +CronJob weekly-predictive-analytics-training of the old platform \(trains predictive-analytics\) is suspended/m);
    expect(out).toMatch(/^FAIL +cut-over +Pipeline model-training-pipeline of the old platform trains models$/m);
    expect(out).not.toMatch(/refresh-features/);
    expect(out).toMatch(/kubectl -n model-lifecycle patch cronjob weekly-anomaly-detector-training -p '\{"spec":\{"suspend":true\}\}'/);
    // Everything else is still fine.
    expect(out).toMatch(/^ok +broker /m);
    expect(out).toMatch(/^ok +secret +Secret model-lifecycle-secrets exists/m);
    for (const value of Object.values(local.secrets)) expect(out + r.stderr).not.toContain(value);

    const json = await doctor(local.kubeconfigPath, ['--output', 'json']);
    expect(json.code).toBe(1);
    const findings = JSON.parse(json.stdout) as Finding[];
    expect(findings.filter((f) => f.level === 'fail').map((f) => f.check).sort()).toEqual(['api', 'cut-over', 'cut-over', 'pvc', 'rbac', 'secret']);
    for (const f of findings.filter((x) => x.level === 'fail')) expect(f.fix).toEqual(expect.any(String));
  }, 150_000);
});

describe('emulator: impersonation, access reviews, metadata-only reads, SCC review', () => {
  let emu: Emulator;
  let dir: string;
  const ns = 'ml';
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}, token = emu.adminToken): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await fetch(`${emu.url}${path}`, { method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() as Record<string, unknown> };
  };
  beforeAll(async () => {
    emu = await startEmulator();
    dir = await mkdtemp(join(tmpdir(), 'doctor-emu-'));
    const rendered = renderManifests(catalog, { namespace: ns, image: 'x' });
    await emu.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } }, ...(rendered['rbac/roles.yaml'] ?? [])]);
    await emu.applyManifests([{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: ns }, stringData: { TOKEN: 'very-secret-value' } }]);
  });
  afterAll(async () => { await emu.close(); await rm(dir, { recursive: true, force: true }); });

  test('SubjectAccessReview answers from the RBAC objects, with the RBAC authorizer\'s reason', async () => {
    const sar = (verb: string, resource: string, group: string): Promise<{ status: number; body: Record<string, unknown> }> => post('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview',
      spec: { user: `system:serviceaccount:${ns}:mlops-gate-health`, resourceAttributes: { namespace: ns, verb, group, resource } },
    });
    const yes = await sar('create', 'jobs', 'batch');
    expect(yes.status).toBe(201);
    expect(yes.body.status).toEqual({ allowed: true, reason: `RBAC: allowed by RoleBinding "mlops-gate-health/${ns}" of Role "mlops-gate-health" to ServiceAccount "mlops-gate-health/${ns}"` });
    expect((await sar('delete', 'pods', '')).body.status).toEqual({ allowed: false });
    const bad = await post('/apis/authorization.k8s.io/v1/subjectaccessreviews', { kind: 'SubjectAccessReview', spec: { resourceAttributes: { verb: 'get', resource: 'pods' } } });
    expect(bad.status).toBe(422);
    // A ServiceAccount may not review others (no create on subjectaccessreviews).
    const token = emu.issueServiceAccountToken(ns, 'mlops-gate-health');
    expect((await post('/apis/authorization.k8s.io/v1/subjectaccessreviews', { kind: 'SubjectAccessReview', spec: { user: 'x', resourceAttributes: { verb: 'get', resource: 'pods' } } }, {}, token)).status).toBe(403);
  });

  test('impersonation is authorised as verb impersonate; the impersonated ServiceAccount gets its groups and its permissions only', async () => {
    const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'i' }] } } } };
    const asGate = { 'Impersonate-User': `system:serviceaccount:${ns}:mlops-gate-health` };
    const dry = await post(`/apis/batch/v1/namespaces/${ns}/jobs?dryRun=All`, job, asGate);
    expect(dry.status).toBe(201);
    expect(emu.store.get({ apiVersion: 'batch/v1', kind: 'Job' }, { name: 'j', namespace: ns })).toBeUndefined();
    const ssar = await post('/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: ns, verb: 'create', group: 'batch', resource: 'jobs' } } }, asGate);
    expect((ssar.body.status as { allowed: boolean }).allowed).toBe(true);
    const denied = await post(`/api/v1/namespaces/${ns}/configmaps?dryRun=All`, { metadata: { name: 'c' } }, asGate);
    expect(denied.status).toBe(403);
    expect(denied.body.message).toBe(`configmaps is forbidden: User "system:serviceaccount:${ns}:mlops-gate-health" cannot create resource "configmaps" in API group "" in the namespace "${ns}"`);
    // A ServiceAccount without the impersonate verb cannot become another one.
    const token = emu.issueServiceAccountToken(ns, 'mlops-notify');
    const refused = await post(`/apis/batch/v1/namespaces/${ns}/jobs?dryRun=All`, job, asGate, token);
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe(`serviceaccounts "mlops-gate-health" is forbidden: User "system:serviceaccount:${ns}:mlops-notify" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "${ns}"`);
    // Groups without a user are refused.
    expect((await post(`/apis/batch/v1/namespaces/${ns}/jobs?dryRun=All`, job, { 'Impersonate-Group': 'system:masters' })).status).toBe(500);
  });

  test('dryRun=All on create, update and patch: validated and admitted like a real write, answered, never stored', async () => {
    await emu.applyManifests([widgetCrd()]);
    const send = async (method: string, path: string, body: unknown, type = 'application/json'): Promise<{ status: number; body: Record<string, unknown> }> => {
      const r = await fetch(`${emu.url}${path}`, { method, headers: { Authorization: `Bearer ${emu.adminToken}`, 'Content-Type': type }, body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() as Record<string, unknown> };
    };
    const widgets = `/apis/${WIDGET_GROUP}/v1/namespaces/${ns}/widgets`;
    const rvBefore = emu.store.currentResourceVersion();
    const bad = await send('POST', `${widgets}?dryRun=All`, { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'w' }, spec: { size: 'big' } });
    expect(bad.status).toBe(422);
    const good = await send('POST', `${widgets}?dryRun=All`, { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } });
    expect(good.status).toBe(201);
    expect(good.body).toMatchObject({ metadata: { name: 'w', namespace: ns }, spec: { size: 1, color: 'blue' } }); // defaulted, as stored would be
    expect(emu.store.currentResourceVersion()).toBe(rvBefore);
    expect(emu.store.get({ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget' }, { name: 'w', namespace: ns })).toBeUndefined();
    // Update and patch of an existing object: answered with the change, stored object untouched.
    await send('POST', widgets, { apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } });
    const stored = emu.store.read({ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget' }, { name: 'w', namespace: ns });
    const patched = await send('PATCH', `${widgets}/w?dryRun=All`, { spec: { size: 5 } }, 'application/merge-patch+json');
    expect(patched.status).toBe(200);
    expect((patched.body.spec as { size: number }).size).toBe(5);
    expect((await send('PATCH', `${widgets}/w?dryRun=All`, { spec: { size: -1 } }, 'application/merge-patch+json')).status).toBe(422);
    const updated = await send('PUT', `${widgets}/w?dryRun=All`, { ...stored, spec: { size: 7 } });
    expect(updated.status).toBe(200);
    expect((updated.body.spec as { size: number }).size).toBe(7);
    expect(emu.store.read({ apiVersion: `${WIDGET_GROUP}/v1`, kind: 'Widget' }, { name: 'w', namespace: ns })).toEqual(stored);
  });

  test('a metadata-only read of a Secret carries no data', async () => {
    const r = await fetch(`${emu.url}/api/v1/namespaces/${ns}/secrets/s`, { headers: { Authorization: `Bearer ${emu.adminToken}`, Accept: 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json' } });
    const text = await r.text();
    expect(JSON.parse(text)).toMatchObject({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 's' } });
    expect(text).not.toContain(Buffer.from('very-secret-value').toString('base64'));
    expect(text).not.toContain('"data"');
  });

  test('PodSecurityPolicySubjectReview: restricted-v2 admits a plain pod, nothing admits a privileged one', async () => {
    const review = (container: object): Promise<{ status: number; body: Record<string, unknown> }> => post(`/apis/security.openshift.io/v1/namespaces/${ns}/podsecuritypolicysubjectreviews`, {
      apiVersion: 'security.openshift.io/v1', kind: 'PodSecurityPolicySubjectReview',
      spec: { template: { spec: { serviceAccountName: 'default', containers: [{ name: 'c', image: 'i', ...container }] } } },
    });
    const ok = await review({ securityContext: { allowPrivilegeEscalation: false } });
    expect(ok.status).toBe(201);
    expect((ok.body.status as { allowedBy?: object }).allowedBy).toEqual({ kind: 'SecurityContextConstraints', apiVersion: 'security.openshift.io/v1', name: 'restricted-v2' });
    const no = await review({ securityContext: { privileged: true } });
    expect(no.body.status).toEqual({ reason: 'CantAssignSecurityContextConstraintProvider' });
  });

  test('kubectl auth can-i --as a ServiceAccount', async () => {
    const kc = join(dir, 'kubeconfig');
    await emu.writeKubeconfig(kc, { namespace: ns });
    const can = (verb: string, what: string): Promise<Run> => run(KUBECTL, ['--kubeconfig', kc, '--cache-dir', join(dir, 'cache'), 'auth', 'can-i', verb, what, '-n', ns, '--as', `system:serviceaccount:${ns}:mlops-start-training`], { HOME: dir });
    const yes = await can('create', 'leases.coordination.k8s.io');
    expect(yes.stdout.trim()).toBe('yes');
    const no = await can('delete', 'pods');
    expect(no.stdout.trim()).toBe('no');
    expect(no.code).toBe(1);
    // --list asks a SelfSubjectRulesReview: the rules of the ServiceAccount's Role.
    const list = await run(KUBECTL, ['--kubeconfig', kc, '--cache-dir', join(dir, 'cache'), 'auth', 'can-i', '--list', '-n', ns, '--as', `system:serviceaccount:${ns}:mlops-start-training`], { HOME: dir });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^leases\.coordination\.k8s\.io\s+\[\]\s+\[\]\s+\[get create update delete\]$/m);
    expect(list.stdout).not.toMatch(/^secrets/m);
  });
});
