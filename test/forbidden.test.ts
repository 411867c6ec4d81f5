// A 403 is a configuration fault (docs/openshift.md): on the openshift profile, Roles from before the
// owner-reference admission make the run fail at once naming the missing permission; a request that could not
// even create its run is answered 503 (the broker keeps it: backoff, then the dead-letter sink) with the reason.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudEvent } from 'cloudevents';
import { renderManifests } from '../config/render.ts';
import { startEmulator, type Emulator } from '../dev/emulator/index.ts';
import { loadYamlDir } from '../dev/manifests.ts';
import { EventTypes, buildEvent } from '../events/index.ts';
import { step as copyStep } from '../functions/copy-gpu-model/index.ts';
import { step as startStep } from '../functions/start-training/index.ts';
import { loadCatalog } from '../runtime/catalog.ts';
import { createKubePort } from '../runtime/kube.ts';
import type { ModelRun, ModelRunStatus } from '../runtime/resources.ts';
import { NAMESPACE, postEvent, serveForTest, startRecordingSink, type RecordingSink, type TestCluster } from './kit.ts';

const MODELRUNS = { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' };
const LEASES = { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' };
const MODEL = 'predictive-analytics';
const catalog = loadCatalog('config/models.yaml');
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

let emu: Emulator;
let dir: string;
let sink: RecordingSink;

beforeAll(async () => {
  emu = await startEmulator({ profile: 'openshift' });
  dir = await mkdtemp(join(tmpdir(), 'mlops-forbidden-'));
  sink = await startRecordingSink();
  const rendered = renderManifests(catalog, { namespace: NAMESPACE, image: 'local' });
  await emu.applyManifests([...(await loadYamlDir('config/crds')), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'argocd' } }, ...(rendered['rbac/roles.yaml'] ?? [])]);
});
afterAll(async () => {
  await sink.close();
  await emu.close();
  await rm(dir, { recursive: true, force: true });
});

/** A step served as its ServiceAccount whose Role has exactly `rules`. */
async function serveAs(stepDef: typeof copyStep, sa: string, rules: Rule[]): Promise<{ url: string; close(): Promise<void> }> {
  await emu.applyManifests([
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: sa, namespace: NAMESPACE }, rules },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: sa, namespace: NAMESPACE },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: sa }, subjects: [{ kind: 'ServiceAccount', name: sa, namespace: NAMESPACE }] },
  ]);
  const kubeconfigPath = join(dir, `kubeconfig-${sa}`);
  await emu.writeKubeconfig(kubeconfigPath, { token: emu.issueServiceAccountToken(NAMESPACE, sa), namespace: NAMESPACE });
  const cluster: TestCluster = { emulator: emu, kubeconfigPath, kube: createKubePort({ kubeconfigPath, namespace: NAMESPACE }), dir, close: async () => {} };
  return serveForTest(stepDef, { cluster, sinkUrl: sink.url });
}

function createCopyingRun(name: string): ModelRun {
  emu.store.create(MODELRUNS, {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
    metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': name } },
    spec: { model: MODEL, trigger: 'schedule', idempotencyKey: `key-${name}`, profile: 'gpu' },
  });
  const status: ModelRunStatus = {
    phase: 'Copying', step: 'copy', startedAt: new Date().toISOString(),
    steps: { training: { started: new Date().toISOString(), finished: new Date().toISOString(), outcome: 'Succeeded', job: name } },
    deadlines: { run: new Date(Date.now() + 3600_000).toISOString() },
  };
  emu.store.create(LEASES, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `model-lock-${MODEL}`, namespace: NAMESPACE }, spec: { holderIdentity: name, leaseDurationSeconds: 3600 } });
  return emu.store.updateStatus(MODELRUNS, { ...emu.store.read(MODELRUNS, { name, namespace: NAMESPACE }), status }) as unknown as ModelRun;
}

const trainingSucceeded = (run: string): CloudEvent<unknown> => buildEvent(EventTypes.trainingSucceeded, {
  step: 'track-training', data: { model: MODEL, run, profile: 'gpu', completedAt: new Date().toISOString(), artifactPath: `.runs/${run}/${MODEL}/model.pkl` },
});

// copy-gpu-model's Role before the openshift profile: Jobs created, never deleted, no finalizers.
const OLD_COPY_RULES: Rule[] = [
  { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'patch'] },
  { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns/status'], verbs: ['patch'] },
  { apiGroups: ['batch'], resources: ['jobs'], verbs: ['create'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'delete'] },
];

test('the old copy Role: the Job create is refused by the owner-reference admission → run Failed at once, naming the missing permission', async () => {
  const served = await serveAs(copyStep, 'old-copy', OLD_COPY_RULES);
  try {
    const run = 'predictive-analytics-f0f0f0f0f0';
    createCopyingRun(run);
    const res = await postEvent(served.url, trainingSucceeded(run));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.runFailed);
    const data = res.event?.data as { step: string; reason: string; message: string };
    expect(data).toMatchObject({ step: 'copy', reason: 'forbidden' });
    expect(data.message).toContain(`cannot create the copy Job ${run}-copy: the Role lacks delete on jobs in API group "batch"`);
    expect(data.message).toContain("cannot set an ownerRef on a resource you can't delete");
    const after = emu.store.read(MODELRUNS, { name: run, namespace: NAMESPACE }) as unknown as ModelRun;
    expect(after.status?.phase).toBe('Failed');
    expect(after.status?.message).toBe(data.message);
    expect(emu.store.get(LEASES, { name: `model-lock-${MODEL}`, namespace: NAMESPACE })).toBeUndefined();
  } finally {
    await served.close();
  }
});

test('delete granted but not modelruns/finalizers: the message names update on modelruns/finalizers', async () => {
  const rules = OLD_COPY_RULES.map((r) => (r.resources[0] === 'jobs' ? { ...r, verbs: ['create', 'delete'] } : r));
  const served = await serveAs(copyStep, 'no-finalizers-copy', rules);
  try {
    const run = 'predictive-analytics-f1f1f1f1f1';
    createCopyingRun(run);
    const res = await postEvent(served.url, trainingSucceeded(run));
    const data = res.event?.data as { reason: string; message: string };
    expect(data.reason).toBe('forbidden');
    expect(data.message).toContain('the Role lacks update on modelruns/finalizers (needed for blockOwnerDeletion)');
  } finally {
    await served.close();
  }
});

test('the rendered copy Role creates the owned Job', async () => {
  const served = await serveAs(copyStep, 'mlops-copy-gpu-model', renderManifests(catalog, { namespace: NAMESPACE, image: 'x' })['rbac/roles.yaml']!
    .filter((o) => o.kind === 'Role' && (o.metadata as { name: string }).name === 'mlops-copy-gpu-model').flatMap((o) => o.rules as Rule[]));
  try {
    const run = 'predictive-analytics-f2f2f2f2f2';
    createCopyingRun(run);
    const res = await postEvent(served.url, trainingSucceeded(run));
    expect(res.status).toBe(204);
    expect(emu.store.get({ group: 'batch', version: 'v1', resource: 'jobs' }, { name: `${run}-copy`, namespace: NAMESPACE })).toBeDefined();
  } finally {
    await served.close();
  }
});

test('no run could be created (no create on modelruns): 503 naming the permission, so the broker keeps the request', async () => {
  const served = await serveAs(startStep, 'no-create-start', [
    { apiGroups: ['lifecycle.mlops.dev'], resources: ['modelruns'], verbs: ['get', 'list'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update', 'delete'] },
    // The model's day-2 controls (docs/day2.md), read before anything is created.
    { apiGroups: [''], resources: ['configmaps'], verbs: ['get'], resourceNames: ['model-controls-anomaly-detector'] },
  ]);
  try {
    const res = await postEvent(served.url, new CloudEvent({ type: EventTypes.trainingRequested, source: '/test', id: 'forbidden-1', datacontenttype: 'application/json', data: { model: 'anomaly-detector', trigger: 'manual' } }));
    expect(res.status).toBe(503);
    const body = JSON.parse(res.body) as { error: string; kind: string };
    expect(body.kind).toBe('forbidden');
    expect(body.error).toContain('forbidden: missing create on modelruns in API group "lifecycle.mlops.dev"');
  } finally {
    await served.close();
  }
});
