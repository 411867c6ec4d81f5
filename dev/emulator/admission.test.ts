// The cluster profiles' admission over real HTTP through client-node: OwnerReferencesPermissionEnforcement as
// kubernetes plugin/pkg/admission/gc does it, and Pod Security "restricted" (kubernetes/pod-security-admission).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { BatchV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { ARGOCD_NAMESPACE, renderManifests } from '../../config/render.ts';
import { copyJobManifest } from '../../functions/copy-gpu-model/manifests.ts';
import { modelRunManifest } from '../../functions/start-training/manifests.ts';
import { loadCatalog } from '../../runtime/catalog.ts';
import type { ModelRun } from '../../runtime/resources.ts';
import { loadYamlDir } from '../manifests.ts';
import { startEmulator } from './index.ts';
import type { ClusterProfile, Emulator } from './index.ts';

const NS = 'model-lifecycle';
const catalog = loadCatalog('config/models.yaml');
const model = catalog.models[0]!;
const emulators: Emulator[] = [];

afterAll(async () => {
  await Promise.all(emulators.map((e) => e.close()));
});

/** The Role copy-gpu-model had before this profile existed: create Jobs, nothing about deleting or finalizers. */
const OLD_COPY_ROLE_RULES = [
  { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
  { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
];

async function cluster(profile: ClusterProfile): Promise<{ emu: Emulator; run: ModelRun; as: (sa: string) => { batch: BatchV1Api; core: CoreV1Api } }> {
  const emu = await startEmulator({ profile });
  emulators.push(emu);
  const rendered = renderManifests(catalog, { namespace: NS, image: 'local' });
  await emu.applyManifests([
    ...(await loadYamlDir('config/crds')),
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ARGOCD_NAMESPACE } },
    ...(rendered['rbac/roles.yaml'] ?? []),
    // The old Role, bound to a ServiceAccount of its own.
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'old-copy', namespace: NS } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'old-copy', namespace: NS }, rules: OLD_COPY_ROLE_RULES },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'old-copy', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'old-copy' }, subjects: [{ kind: 'ServiceAccount', name: 'old-copy', namespace: NS }] },
    // Without the finalizers grant only (delete on jobs present): the second check of the plugin.
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'no-finalizers', namespace: NS },
      rules: [...OLD_COPY_ROLE_RULES, { apiGroups: ['batch'], resources: ['jobs'], verbs: ['delete', 'patch'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'no-finalizers', namespace: NS },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'no-finalizers' }, subjects: [{ kind: 'ServiceAccount', name: 'no-finalizers', namespace: NS }] },
  ]);
  const manifest = modelRunManifest(`${model.name}-0123456789`, { model: model.name, trigger: 'manual' }, model, 'admission-test');
  const run = emu.store.create({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun' }, { ...manifest, metadata: { name: manifest.metadata?.name ?? '', namespace: NS, labels: manifest.metadata?.labels ?? {} } }) as unknown as ModelRun;
  const as = (sa: string): { batch: BatchV1Api; core: CoreV1Api } => {
    const token = emu.issueServiceAccountToken(NS, sa);
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: emu.url, skipTLSVerify: true }], users: [{ name: 'u', token }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u', namespace: NS }], currentContext: 'x',
    });
    return { batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api) };
  };
  return { emu, run, as };
}

async function failure(p: Promise<unknown>): Promise<{ code: number; message: string; reason: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    if (typeof e.code !== 'number') throw err;
    const body = (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as { message: string; reason: string };
    return { code: e.code, message: body.message, reason: body.reason };
  }
  throw new Error('expected the call to be rejected');
}

const jobOf = (run: ModelRun): V1Job => copyJobManifest(run, model) as V1Job;

describe('OwnerReferencesPermissionEnforcement (openshift profile)', () => {
  let c: Awaited<ReturnType<typeof cluster>>;
  beforeAll(async () => {
    c = await cluster('openshift');
  });

  test('the old Role cannot create a Job owned by the ModelRun: no delete on jobs', async () => {
    const job = jobOf(c.run);
    expect(job.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ModelRun', blockOwnerDeletion: true });
    const f = await failure(c.as('old-copy').batch.createNamespacedJob({ namespace: NS, body: job }));
    expect(f).toEqual({ code: 403, reason: 'Forbidden', message: `jobs.batch "${job.metadata?.name}" is forbidden: cannot set an ownerRef on a resource you can't delete: , <nil>` });
  });

  test('with delete but without update on modelruns/finalizers, blockOwnerDeletion is refused', async () => {
    const job = jobOf(c.run);
    const f = await failure(c.as('no-finalizers').batch.createNamespacedJob({ namespace: NS, body: job }));
    expect(f.code).toBe(403);
    expect(f.message).toBe(`jobs.batch "${job.metadata?.name}" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: , <nil>`);
    // The same ref without blockOwnerDeletion needs only the delete permission.
    const plain = jobOf(c.run);
    plain.metadata!.name = `${plain.metadata!.name}-x`;
    plain.metadata!.ownerReferences = plain.metadata!.ownerReferences!.map((r) => ({ ...r, blockOwnerDeletion: false }));
    await expect(c.as('no-finalizers').batch.createNamespacedJob({ namespace: NS, body: plain })).resolves.toBeDefined();
  });

  test('the rendered Role (delete on jobs, update on modelruns/finalizers) creates the owned Job', async () => {
    const created = await c.as('mlops-copy-gpu-model').batch.createNamespacedJob({ namespace: NS, body: jobOf(c.run) });
    expect(created.metadata?.ownerReferences?.[0]?.uid).toBe(c.run.metadata.uid);
  });

  test('an update that turns blockOwnerDeletion on is checked; one that keeps the refs is not', async () => {
    const sa = c.as('no-finalizers');
    const name = `${jobOf(c.run).metadata!.name}-x`;
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    await expect(sa.batch.patchNamespacedJob({ name, namespace: NS, body: { metadata: { labels: { touched: 'yes' } } } }, merge)).resolves.toBeDefined();
    const refs = jobOf(c.run).metadata!.ownerReferences!;
    const f = await failure(sa.batch.patchNamespacedJob({ name, namespace: NS, body: { metadata: { ownerReferences: refs } } }, merge));
    expect(f.message).toContain("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on");
  });

  test('an owner of an unknown kind cannot block deletion: no RESTMapping', async () => {
    const job = jobOf(c.run);
    job.metadata!.name = 'unknown-owner';
    job.metadata!.ownerReferences = [{ apiVersion: 'example.com/v1', kind: 'Gizmo', name: 'g', uid: 'u-1', blockOwnerDeletion: true }];
    const f = await failure(c.as('mlops-copy-gpu-model').batch.createNamespacedJob({ namespace: NS, body: job }));
    expect(f.message).toBe('jobs.batch "unknown-owner" is forbidden: cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion example.com/v1 Kind Gizmo: no matches for kind "Gizmo" in version "example.com/v1"');
  });
});

describe('Pod Security', () => {
  const podOf = (job: V1Job, name: string): V1Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: job.spec?.template.metadata?.labels ?? {} }, spec: job.spec!.template.spec! });
  const LEGACY: V1Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'legacy' }, spec: { restartPolicy: 'Never', containers: [{ name: 'step', image: 'python:3.11' }] } };

  test('openshift: a pod without a restricted securityContext is rejected with the upstream message; our Job template passes', async () => {
    const c = await cluster('openshift');
    const core = new KubeConfig();
    core.loadFromString(c.emu.kubeconfigYaml({ namespace: NS }));
    const api = core.makeApiClient(CoreV1Api);
    const f = await failure(api.createNamespacedPod({ namespace: NS, body: LEGACY }));
    expect(f).toEqual({
      code: 403,
      reason: 'Forbidden',
      message: 'pods "legacy" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "step" must set securityContext.allowPrivilegeEscalation=false), '
        + 'unrestricted capabilities (container "step" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or container "step" must set securityContext.runAsNonRoot=true), '
        + 'seccompProfile (pod or container "step" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    });
    const root = { ...LEGACY, metadata: { name: 'root' }, spec: { ...LEGACY.spec!, hostNetwork: true, securityContext: { runAsUser: 0 }, volumes: [{ name: 'h', hostPath: { path: '/' } }] } };
    const f2 = await failure(api.createNamespacedPod({ namespace: NS, body: root }));
    expect(f2.message).toContain('host namespaces (hostNetwork=true)');
    expect(f2.message).toContain('restricted volume types (volume "h" uses restricted volume type "hostPath")');
    expect(f2.message).toContain('runAsUser=0 (pod must not set runAsUser=0)');
    await expect(api.createNamespacedPod({ namespace: NS, body: podOf(jobOf(c.run), 'ours') })).resolves.toBeDefined();
    // A namespace labelled privileged is not enforced.
    await c.emu.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'lab', labels: { 'pod-security.kubernetes.io/enforce': 'privileged' } } }]);
    await expect(api.createNamespacedPod({ namespace: 'lab', body: LEGACY })).resolves.toBeDefined();
  });

  test('kubernetes: neither plugin is enabled (old Role and a plain pod are accepted)', async () => {
    const c = await cluster('kubernetes');
    await expect(c.as('old-copy').batch.createNamespacedJob({ namespace: NS, body: jobOf(c.run) })).resolves.toBeDefined();
    const kc = new KubeConfig();
    kc.loadFromString(c.emu.kubeconfigYaml({ namespace: NS }));
    await expect(kc.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: NS, body: LEGACY })).resolves.toBeDefined();
  });
});
