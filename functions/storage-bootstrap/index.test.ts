import path from 'node:path';
import { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { startLocalS3, type LocalS3 } from '../../dev/s3/index.ts';
import { startJobRunner, type JobRunner } from '../../dev/sim/job-runner.ts';
import { startKServeSimulator, type KServeSimulator } from '../../dev/sim/kserve.ts';
import { Scenarios } from '../../dev/sim/scenarios.ts';
import { parseCatalog } from '../../runtime/catalog.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { createS3Port, type S3Config } from '../../runtime/s3.ts';
import { NAMESPACE, ManualClock, postEvent, serveForTest, startTestCluster, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { STATUS_CONFIGMAP } from './effects.ts';
import { step } from './index.ts';

// storage-bootstrap over real HTTP against the emulator, the local S3 server (real SigV4 checks), the simulated
// Job controller running config/jobs/placeholder.py for real, and the KServe simulator loading from the bucket.

const CATALOG = `
defaults:
  notebook: { gitUrl: https://github.com/example/models.git, gitRef: main, image: quay.io/jupyter/scipy-notebook:2024-10-07 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: notebooks/anomaly.ipynb }
    features: { count: 6 }
    output: { kind: label, labels: [1, -1] }
    storage: { kind: s3, prefix: models }
  - name: forecaster
    inferenceService: forecaster
    notebook: { path: notebooks/forecast.ipynb }
    features: { count: 5 }
    output: { kind: regression, width: 3 }
    storage: { kind: s3, prefix: models }
  - name: on-pvc
    inferenceService: on-pvc
    notebook: { path: notebooks/pvc.ipynb }
    features: { count: 2 }
    output: { kind: regression, width: 1 }
`;
const catalog = parseCatalog(CATALOG);
const SECRETS = { group: '', version: 'v1', resource: 'secrets' };
const CONFIGMAPS = { group: '', version: 'v1', resource: 'configmaps' };
const JOBS = { group: 'batch', version: 'v1', resource: 'jobs' };
const ISVCS = { group: 'serving.kserve.io', version: 'v1beta1', resource: 'inferenceservices' };
const KEY = (model: string): string => `models/${model}/releases/placeholder/model.pkl`;

let cluster: TestCluster;
let s3: LocalS3;
let runner: JobRunner;
let kserve: KServeSimulator;
let served: ServedStep;
const clock = new ManualClock('2026-11-30T10:00:00.000Z');

beforeAll(async () => {
  cluster = await startTestCluster();
  s3 = await startLocalS3({ directory: path.join(cluster.dir, 's3'), buckets: ['model-storage', 'frozen'], readOnlyBuckets: ['frozen'], credentials: { accessKeyId: 'AKIDBOOT', secretAccessKey: 'boot-secret' } });
  runner = await startJobRunner({ store: cluster.emulator.store, stateDir: cluster.dir, namespace: NAMESPACE, mode: 'test' });
  kserve = await startKServeSimulator({ store: cluster.emulator.store, stateDir: cluster.dir, namespace: NAMESPACE, catalog, scenario: Scenarios['happy-cpu'], drainSeconds: 0, s3: { bucket: 'model-storage', objectFile: (b, k) => s3.objectFile(b, k) } });
  served = await serveForTest(step, { cluster, catalog, clock });
}, 120_000);
afterAll(async () => { await served.close(); await kserve.close(); await runner.close(); await s3.close(); await cluster.close(); });

const store = () => cluster.emulator.store;
const good = (): Record<string, string> => s3.env('model-storage');

function setSecret(values: Record<string, string>): void {
  const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  const existing = store().get(SECRETS, { name: 'model-storage-config', namespace: NAMESPACE });
  if (existing) store().update(SECRETS, { ...existing, data });
  else store().create(SECRETS, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'model-storage-config', namespace: NAMESPACE }, type: 'Opaque', data });
}

function record(): Record<string, string> {
  return (store().get(CONFIGMAPS, { name: STATUS_CONFIGMAP, namespace: NAMESPACE }) as { data?: Record<string, string> } | undefined)?.data ?? {};
}

const requested = (): CloudEvent<unknown> => buildEvent(EventTypes.storageBootstrapRequested, { step: 'mlops-cli', data: { requestedBy: 'test' } });
const tick = (): CloudEvent<unknown> => new CloudEvent({ type: 'dev.knative.sources.ping', source: '/apis/v1/namespaces/mlops/pingsources/watchdog-tick', id: `tick-${Math.random()}`, data: { watchdog: true } });
const jobRef = (name: string): CloudEvent<unknown> => new CloudEvent({ type: 'dev.knative.apiserver.ref.update', source: 'https://kubernetes.default.svc', id: `job-${Math.random()}`, data: { apiVersion: 'batch/v1', kind: 'Job', name, namespace: NAMESPACE } });
const secretRef = (): CloudEvent<unknown> => new CloudEvent({ type: 'dev.knative.apiserver.ref.update', source: 'https://kubernetes.default.svc', id: `secret-${Math.random()}`, data: { apiVersion: 'v1', kind: 'Secret', name: 'model-storage-config', namespace: NAMESPACE } });

async function bucketKeys(bucket: string, cfg: S3Config = { endpoint: s3.endpoint, bucket, region: 'us-east-1', accessKeyId: 'AKIDBOOT', secretAccessKey: 'boot-secret' }): Promise<string[]> {
  const port = createS3Port(cfg);
  try { return await port.list(bucket, ''); } finally { port.close(); }
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('storage-bootstrap', () => {
  test('bad inputs: each failure is named, recorded and notified, and nothing is written', async () => {
    const rows: Array<[string, Record<string, string>, string, string]> = [
      ['wrong credentials', { ...good(), AWS_SECRET_ACCESS_KEY: 'not-the-secret' }, 'connectivity', 'bad-credentials'],
      ['unreachable endpoint', { ...good(), AWS_S3_ENDPOINT: 'http://127.0.0.1:1' }, 'connectivity', 'unreachable'],
      ['unresolvable endpoint', { ...good(), AWS_S3_ENDPOINT: 'http://s3.does-not-exist.invalid' }, 'connectivity', 'dns'],
      ['missing bucket', { ...good(), AWS_S3_BUCKET: 'no-such-bucket' }, 'connectivity', 'no-such-bucket'],
      ['read-only bucket policy', { ...good(), AWS_S3_BUCKET: 'frozen' }, 'connectivity', 'forbidden'],
      ['no credentials in the Secret', { AWS_S3_ENDPOINT: s3.endpoint, AWS_S3_BUCKET: 'model-storage' }, 'config', 'bad-config'],
    ];
    for (const [name, secret, stage, reason] of rows) {
      setSecret(secret);
      const before = { models: await bucketKeys('model-storage'), frozen: await bucketKeys('frozen') };
      const res = await postEvent(served.url, requested());
      expect([name, res.status, res.event?.type]).toEqual([name, 200, EventTypes.storageFailed]);
      expect([name, res.event?.data]).toMatchObject([name, { stage, reason }]);
      expect([name, record()]).toMatchObject([name, { state: 'failed', stage, reason }]);
      // Nothing written anywhere: no probe left, no Job, no predictor touched, the Secret's values not echoed.
      expect([name, await bucketKeys('model-storage'), await bucketKeys('frozen')]).toEqual([name, before.models, before.frozen]);
      expect(store().list(JOBS, { namespace: NAMESPACE })).toHaveLength(0);
      expect(JSON.stringify(res.event?.data)).not.toContain(secret.AWS_SECRET_ACCESS_KEY ?? '\u0000');
    }
    // The same failure again (a tick 5 minutes later) is recorded but not re-announced.
    clock.advance(6 * 60 * 1000);
    const again = await postEvent(served.url, tick());
    expect(again.status).toBe(204);
    expect(record()).toMatchObject({ state: 'failed', reason: 'bad-config' });
  });

  test('an object that exists but is not a model is named and left untouched', async () => {
    setSecret(good());
    const port = createS3Port({ endpoint: s3.endpoint, bucket: 'model-storage', region: 'us-east-1', accessKeyId: 'AKIDBOOT', secretAccessKey: 'boot-secret' });
    await port.put('model-storage', KEY('anomaly-detector'), Buffer.from('<html>not a model</html>'));
    try {
      const res = await postEvent(served.url, secretRef());
      expect(res.event?.type).toBe(EventTypes.storageFailed);
      expect(res.event?.data).toMatchObject({ stage: 'placeholder', reason: 'not-a-model', model: 'anomaly-detector' });
      expect(String(await port.get('model-storage', KEY('anomaly-detector')))).toBe('<html>not a model</html>');
      expect(store().list(JOBS, { namespace: NAMESPACE })).toHaveLength(0);
      expect(await bucketKeys('model-storage')).toEqual([KEY('anomaly-detector')]);
    } finally {
      await port.delete('model-storage', KEY('anomaly-detector'));
      port.close();
    }
  });

  test('uploads a placeholder per S3 model (real sklearn, presigned PUT), rolls and probes the predictors, none twice', async () => {
    setSecret(good());
    clock.advance(60 * 60 * 1000);
    const first = await postEvent(served.url, requested());
    expect(first.status).toBe(204);
    expect(record()).toMatchObject({ state: 'in-progress' });
    const jobs = store().list(JOBS, { namespace: NAMESPACE }) as KubeObject[];
    expect(jobs.map((j) => j.metadata?.name).sort()).toEqual([expect.stringMatching(/^sbp-anomaly-detector-/), expect.stringMatching(/^sbp-forecaster-/)]);
    // The Job holds no credentials: only a presigned URL for a staging key.
    const env = JSON.stringify((jobs[0] as { spec?: unknown }).spec);
    expect(env).not.toContain('boot-secret');
    expect(env).toContain('X-Amz-Signature');
    await runner.settled();
    // The Jobs' ends (ApiServerSource) → promotion to the served keys and a rollout of each predictor.
    for (const j of jobs) expect((await postEvent(served.url, jobRef(j.metadata?.name ?? ''))).status).toBe(204);
    expect((await bucketKeys('model-storage')).sort()).toEqual([KEY('anomaly-detector'), KEY('forecaster')]);
    const isvc = store().get(ISVCS, { name: 'anomaly-detector', namespace: NAMESPACE }) as unknown as { spec: { predictor: { annotations?: Record<string, string> } } };
    expect(isvc.spec.predictor.annotations?.['mlops.dev/storage-bootstrap']).toMatch(/^[0-9a-f]{12}$/);
    // The new pods load the objects; the tick finds them serving and the check concludes.
    await kserve.settled();
    const done = await until('storage.validated', async () => {
      const res = await postEvent(served.url, tick());
      return res.event;
    });
    expect(done.type).toBe(EventTypes.storageValidated);
    expect(done.data).toMatchObject({ bucket: 'model-storage', models: [
      { model: 'anomaly-detector', object: KEY('anomaly-detector'), placeholder: 'uploaded', served: 2 },
      { model: 'forecaster', object: KEY('forecaster'), placeholder: 'uploaded', served: 2 },
    ] });
    expect(record()).toMatchObject({ state: 'validated' });
    // Readable with the AWS SDK and the credentials of <state>/s3.env; a real joblib pickle.
    const port = createS3Port({ endpoint: good().AWS_S3_ENDPOINT ?? '', bucket: 'model-storage', region: 'us-east-1', accessKeyId: good().AWS_ACCESS_KEY_ID ?? '', secretAccessKey: good().AWS_SECRET_ACCESS_KEY ?? '' });
    const bytes = await port.get('model-storage', KEY('forecaster'));
    expect(bytes?.subarray(0, 1)[0]).toBe(0x80);
    // Asked again: nothing uploaded twice, no new Job.
    const jobsBefore = store().list(JOBS, { namespace: NAMESPACE }).length;
    clock.advance(60 * 60 * 1000);
    const again = await postEvent(served.url, requested());
    expect(again.event?.type).toBe(EventTypes.storageValidated);
    expect(again.event?.data).toMatchObject({ models: [{ placeholder: 'existing' }, { placeholder: 'existing' }] });
    expect(store().list(JOBS, { namespace: NAMESPACE })).toHaveLength(jobsBefore);
    expect(Buffer.compare(bytes ?? Buffer.alloc(0), (await port.get('model-storage', KEY('forecaster'))) ?? Buffer.alloc(0))).toBe(0);
    port.close();
    // A tick within the day does nothing.
    expect((await postEvent(served.url, tick())).status).toBe(204);
  });
});
