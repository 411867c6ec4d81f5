import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CloudEvent } from 'cloudevents';
import { startLocalS3, type LocalS3 } from '../../dev/s3/index.ts';
import { startJobRunner, type JobRunner } from '../../dev/sim/job-runner.ts';
import { waitFor } from '../../dev/sim/testkit.ts';
import { pvcDir } from '../../dev/sim/volumes.ts';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { createS3Port, type S3Port } from '../../runtime/s3.ts';
import { ManualClock, NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step } from './index.ts';

// A model served from a bucket (docs/storage.md "Promotion into the bucket"), end to end over real HTTP: the
// emulator, the local S3 server (real SigV4 checks, an emulated read-only bucket), and the simulated Job controller
// running config/jobs/promote.py for real, which PUTs the release to the presigned URL restart-predictor made.

const MODEL = 'anomaly-detector';
const CATALOG = `
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: quay.io/jupyter/scipy-notebook:2024-10-07 }
models:
  - name: ${MODEL}
    inferenceService: ${MODEL}
    notebook: { path: notebooks/anomaly.ipynb }
    features: { count: 6 }
    output: { kind: label, labels: [1, -1] }
    storage: { kind: s3, prefix: models }
    releasesKept: 2
`;
const catalog = parseCatalog(CATALOG);
const GVR = {
  modelruns: { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' },
  jobs: { group: 'batch', version: 'v1', resource: 'jobs' },
  pods: { group: '', version: 'v1', resource: 'pods' },
  leases: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' },
  isvcs: { group: 'serving.kserve.io', version: 'v1beta1', resource: 'inferenceservices' },
  secrets: { group: '', version: 'v1', resource: 'secrets' },
} as const;
const folder = (bucket: string, release: string): string => `s3://${bucket}/models/${MODEL}/releases/${release}/`;
const keyOf = (release: string): string => `models/${MODEL}/releases/${release}/model.pkl`;
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Isvc = KubeObject & { spec: { predictor: { annotations?: Record<string, string>; model: { storageUri: string } } } };

let cluster: TestCluster;
let s3: LocalS3;
let runner: JobRunner;
let sink: RecordingSink;
let served: ServedStep;
let port: S3Port;
const clock = new ManualClock('2026-11-30T10:00:00.000Z');

beforeAll(async () => {
  cluster = await startTestCluster();
  s3 = await startLocalS3({ directory: path.join(cluster.dir, 's3'), buckets: ['model-storage', 'frozen'], readOnlyBuckets: ['frozen'], credentials: { accessKeyId: 'AKIDPROMO', secretAccessKey: 'promo-secret' } });
  runner = await startJobRunner({ store: cluster.emulator.store, stateDir: cluster.dir, namespace: NAMESPACE, mode: 'test', python: '/usr/bin/python3' });
  sink = await startRecordingSink();
  served = await serveForTest(step, { cluster, catalog, clock, sinkUrl: sink.url });
  port = createS3Port({ endpoint: s3.endpoint, bucket: 'model-storage', region: 'us-east-1', ...s3.credentials });
}, 120_000);
afterAll(async () => { port.close(); await served.close(); await sink.close(); await runner.close(); await s3.close(); await cluster.close(); });

const store = () => cluster.emulator.store;
const isvc = (): Isvc => store().get(GVR.isvcs, { name: MODEL, namespace: NAMESPACE }) as unknown as Isvc;
const isvcPatches = (): number => cluster.emulator.requests.filter((r) => r.verb === 'patch' && r.resource === 'inferenceservices').length;
const keys = async (bucket: string): Promise<string[]> => (await port.list(bucket, `models/${MODEL}/releases/`)).sort();
const runOf = async (name: string): Promise<ModelRun> => (await cluster.kube.get<ModelRun & KubeObject>({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', group: 'lifecycle.mlops.dev', version: 'v1alpha1', kind: 'ModelRun', plural: 'modelruns', namespaced: true }, name))!;

function reset(bucket: string): void {
  for (const gvr of [GVR.modelruns, GVR.jobs, GVR.pods, GVR.leases, GVR.isvcs, GVR.secrets]) store().deleteCollection(gvr, { namespace: NAMESPACE });
  const data = Object.fromEntries(Object.entries(s3.env(bucket)).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  store().create(GVR.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'model-storage-config', namespace: NAMESPACE }, type: 'Opaque', data });
  // As the KServe simulator / an install creates it: the placeholder release, no release annotation yet.
  store().create(GVR.isvcs, {
    apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: MODEL, namespace: NAMESPACE },
    spec: { predictor: { model: { modelFormat: { name: 'sklearn' }, storageUri: folder(bucket, 'placeholder') } } },
  });
  cluster.emulator.resetRequests();
}

/** A gated run waiting in Promoting, its staged model on the PVC; `gatedSha` is what the gate recorded. */
function gatedRun(run: string, model: Buffer, gatedSha = sha(model)): void {
  const staged = path.join(pvcDir(cluster.dir, 'model-storage-pvc'), '.runs', run, MODEL);
  mkdirSync(staged, { recursive: true });
  writeFileSync(path.join(staged, 'model.pkl'), model);
  const status: ModelRunStatus = { phase: 'Promoting', step: 'promote', steps: { gate: { finished: '2026-11-30T09:59:00.000Z', outcome: 'approved' } }, artifact: { path: `.runs/${run}/${MODEL}/model.pkl`, sha256: gatedSha, bytes: model.length }, gate: { verdict: 'approved' } };
  const stored = store().create(GVR.modelruns, {
    apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
    metadata: { name: run, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': run } },
    spec: { model: MODEL, trigger: 'schedule', idempotencyKey: `k-${run}`, profile: 'cpu' },
  });
  store().updateStatus(GVR.modelruns, { ...stored, status });
  store().deleteCollection(GVR.leases, { namespace: NAMESPACE });
  store().create(GVR.leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `model-lock-${MODEL}`, namespace: NAMESPACE }, spec: { holderIdentity: run, leaseDurationSeconds: 3600 } });
}

const approved = (run: string, model: Buffer): CloudEvent<unknown> => buildEvent(EventTypes.modelApproved, {
  step: 'gate-health',
  data: { model: MODEL, run, path: `.runs/${run}/${MODEL}/model.pkl`, bytes: model.length, sha256: sha(model), checks: [{ name: 'exists', ok: true }], probe: { rows: [[0, 0, 0, 0, 0, 0]], expected: [1] } },
});
let seq = 0;
const jobUpdate = (job: KubeObject): CloudEvent<unknown> => new CloudEvent({
  type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id: `upd-${seq++}`,
  subject: `/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${job.metadata?.name}`, datacontenttype: 'application/json', mlopsroute: 'promote', data: job,
});

/** model.approved → the promote Job runs promote.py for real → its end is delivered; returns the reply. */
async function promote(run: string, model: Buffer, gatedSha?: string): Promise<Awaited<ReturnType<typeof postEvent>>> {
  gatedRun(run, model, gatedSha);
  expect((await postEvent(served.url, approved(run, model))).status).toBe(204);
  const job = await waitFor(`${run}-promote to finish`, () => {
    const j = store().get(GVR.jobs, { name: `${run}-promote`, namespace: NAMESPACE });
    const conditions = (j?.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions ?? [];
    return conditions.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True') ? j : undefined;
  }, 60_000);
  return postEvent(served.url, jobUpdate(job));
}

const pickle = (tag: string): Buffer => Buffer.concat([Buffer.from([0x80, 0x04, 0x95]), Buffer.from(`model ${tag} `.repeat(40))]);

describe('restart-predictor: a model served from a bucket', () => {
  test('promotion uploads the release, checks its sha256, rolls the predictor in ONE patch; rollback restores the previous storageUri; releases beyond releasesKept are pruned', async () => {
    reset('model-storage');
    const placeholder = pickle('placeholder');
    await port.put('model-storage', keyOf('placeholder'), placeholder);
    // S3's LastModified has whole seconds (pruning orders by it): releases promoted in one second would tie.
    await new Promise((r) => setTimeout(r, 1100));

    // The upload Job holds a presigned URL, no credentials, and the one label that admits egress.
    const r1 = 'anomaly-detector-00000000r1';
    const m1 = pickle('r1');
    const res1 = await promote(r1, m1);
    const job = store().get(GVR.jobs, { name: `${r1}-promote`, namespace: NAMESPACE }) as unknown as { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: Array<{ env: Array<{ name: string; value: string }> }> } } } };
    expect(job.spec.template.metadata.labels['mlops.dev/egress']).toBe('s3-upload');
    const env = Object.fromEntries(job.spec.template.spec.containers[0]!.env.map((e) => [e.name, e.value]));
    expect(env.UPLOAD_URL).toMatch(new RegExp(`^${s3.endpoint}/model-storage/${keyOf(r1)}\\?.*X-Amz-Signature=`));
    expect(JSON.stringify(job)).not.toContain(s3.credentials.secretAccessKey);

    expect(res1.event?.type).toBe(EventTypes.predictorRestarted);
    expect(res1.event?.data).toMatchObject({ release: r1, previousRelease: 'placeholder' });
    expect(sha((await port.get('model-storage', keyOf(r1)))!)).toBe(sha(m1));
    expect(isvc().spec.predictor.model.storageUri).toBe(folder('model-storage', r1));
    expect(isvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(r1);
    expect(isvcPatches()).toBe(1);
    expect((await runOf(r1)).status).toMatchObject({ phase: 'Verifying', release: { promoted: r1, replaced: 'placeholder' } });

    // A second release: previous is r1; releasesKept 2 keeps r1 and r2, the placeholder goes.
    await new Promise((r) => setTimeout(r, 1100));
    const r2 = 'anomaly-detector-00000000r2';
    const m2 = pickle('r2');
    const res2 = await promote(r2, m2);
    expect(res2.event?.data).toMatchObject({ release: r2, previousRelease: r1 });
    expect(isvc().spec.predictor.model.storageUri).toBe(folder('model-storage', r2));
    expect(isvcPatches()).toBe(2);
    expect(await keys('model-storage')).toEqual([keyOf(r1), keyOf(r2)]);

    // Verification fails: no rollback Job, the restore is recorded, storageUri points back at r1 (one more patch).
    const verifying = await runOf(r2);
    store().updateStatus(GVR.modelruns, { ...(verifying as unknown as KubeObject), status: { ...verifying.status, steps: { ...verifying.status?.steps, verify: { finished: 't', outcome: 'mismatch', message: 'row 0' } } } } as never);
    const failed = buildEvent(EventTypes.deploymentFailed, { step: 'verify-endpoint', data: { model: MODEL, run: r2, release: r2, reason: 'mismatch', message: 'row 0 expected 1, got -1' } });
    for (let i = 0; i < 2; i++) expect((await postEvent(served.url, failed)).status).toBe(204);
    expect(store().get(GVR.jobs, { name: `${r2}-rollback`, namespace: NAMESPACE })).toBeUndefined();
    expect(isvc().spec.predictor.model.storageUri).toBe(folder('model-storage', r1));
    expect(isvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(r1);
    expect(isvcPatches()).toBe(3);
    expect((await runOf(r2)).status).toMatchObject({ phase: 'Verifying', rollback: { release: r1 }, steps: { rollback: { outcome: 'restored' } } });
    // Both releases stay: the restored one and the failed one are never pruned by a rollback.
    expect(await keys('model-storage')).toEqual([keyOf(r1), keyOf(r2)]);
  }, 180_000);

  test('an upload whose sha256 is not the gated one is deleted and the run fails; the served model is untouched', async () => {
    reset('model-storage');
    const run = 'anomaly-detector-00000000m1';
    const before = { uri: isvc().spec.predictor.model.storageUri, keys: await keys('model-storage') };
    const res = await promote(run, pickle('tampered'), 'f'.repeat(64));
    expect(res.event?.type).toBe(EventTypes.runFailed);
    expect((res.event?.data as { reason: string; message: string }).message).toContain(`is not the gated ${'f'.repeat(64)}`);
    expect(await port.head('model-storage', keyOf(run))).toBeUndefined();
    expect(await keys('model-storage')).toEqual(before.keys);
    expect(isvc().spec.predictor.model.storageUri).toBe(before.uri);
    expect(isvc().spec.predictor.annotations).toBeUndefined();
    expect(isvcPatches()).toBe(0);
    expect((await runOf(run)).status?.phase).toBe('Failed');
  }, 120_000);

  test('a bucket whose policy forbids writes: the upload is refused (403), nothing is written, the run fails, the served model is untouched', async () => {
    reset('frozen');
    const run = 'anomaly-detector-00000000f1';
    const refusedBefore = s3.refusals.get('AccessDenied') ?? 0;
    const res = await promote(run, pickle('frozen'));
    expect(res.event?.type).toBe(EventTypes.runFailed);
    expect((res.event?.data as { reason: string; message: string })).toMatchObject({ reason: 'promote-failed', message: expect.stringContaining('upload to the bucket refused: HTTP 403') });
    expect(s3.refusals.get('AccessDenied') ?? 0).toBeGreaterThan(refusedBefore);
    expect(await keys('frozen')).toEqual([]);
    expect(isvc().spec.predictor.model.storageUri).toBe(folder('frozen', 'placeholder'));
    expect(isvcPatches()).toBe(0);
    expect((await runOf(run)).status?.phase).toBe('Failed');
  }, 120_000);
});
