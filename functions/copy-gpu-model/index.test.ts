import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { Resources, type ModelRun, type ModelRunStatus } from '../../runtime/resources.ts';
import { NAMESPACE, ManualClock, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { removeDir, runScript, tempDir } from '../../test/jobs/run-script.ts';
import { step } from './index.ts';
import { ApiError } from '../../dev/emulator/index.ts';
import { startJobRunner } from '../../dev/sim/job-runner.ts';
import { waitFor } from '../../dev/sim/testkit.ts';

const MODELRUNS = { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' };
const JOBS = { group: 'batch', version: 'v1', resource: 'jobs' };
const PODS = { group: '', version: 'v1', resource: 'pods' };
const LEASES = { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' };
const MODEL = 'predictive-analytics';

type JobObject = KubeObject & { spec: { template: { metadata: unknown; spec: Record<string, unknown> } } & Record<string, unknown> };

describe('copy-gpu-model over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let served: ServedStep;
  let scratch: string;
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    served = await serveForTest(step, { cluster, sinkUrl: sink.url, clock });
    scratch = tempDir('copy-gpu-model-');
  });
  afterAll(async () => { await served.close(); await sink.close(); await cluster.close(); removeDir(scratch); });
  beforeEach(() => {
    for (const sel of [MODELRUNS, JOBS, PODS, LEASES]) cluster.emulator.store.deleteCollection(sel, { namespace: NAMESPACE });
    sink.events.length = 0;
    clock.set('2026-11-22T10:00:00.000Z');
  });

  const store = () => cluster.emulator.store;
  const getRun = async (name: string) => (await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, name)) as ModelRun;
  const jobs = async () => cluster.kube.listAll<JobObject>(Resources.job);

  function createRun(name: string, profile: 'cpu' | 'gpu', status: ModelRunStatus): ModelRun {
    store().create(MODELRUNS, {
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
      metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': name, 'mlops.dev/phase': status.phase ?? 'Pending' } },
      spec: { model: MODEL, trigger: 'schedule', idempotencyKey: `key-${name}`, profile },
    });
    return store().updateStatus(MODELRUNS, { ...store().read(MODELRUNS, { name, namespace: NAMESPACE }), status }) as unknown as ModelRun;
  }
  const copyingStatus = (run: string): ModelRunStatus => ({
    phase: 'Copying', step: 'copy', startedAt: '2026-11-22T09:00:00.000Z',
    steps: { training: { started: '2026-11-22T09:00:00.000Z', finished: '2026-11-22T09:50:00.000Z', outcome: 'Succeeded', job: run } },
    artifact: { path: `.runs/${run}/${MODEL}/model.pkl` }, deadlines: { run: '2026-11-22T18:00:00.000Z' },
  });
  const trainingSucceeded = (run: string, profile: 'cpu' | 'gpu' = 'gpu') => buildEvent(EventTypes.trainingSucceeded, {
    step: 'track-training', data: { model: MODEL, run, profile, completedAt: '2026-11-22T09:50:00.000Z', artifactPath: `.runs/${run}/${MODEL}/model.pkl` },
  });

  function finishJob(name: string, message: string | undefined, outcome: 'Complete' | 'Failed', reason?: string): KubeObject {
    if (message !== undefined) {
      const pod = store().create(PODS, {
        apiVersion: 'v1', kind: 'Pod',
        metadata: { name: `${name}-abcde`, namespace: NAMESPACE, labels: { 'batch.kubernetes.io/job-name': name, 'job-name': name } },
        spec: { restartPolicy: 'Never', containers: [{ name: 'step', image: 'x' }] },
      });
      store().updateStatus(PODS, { ...pod, status: { phase: 'Succeeded', containerStatuses: [{ name: 'step', ready: false, restartCount: 0, image: 'x', imageID: '', state: { terminated: { exitCode: 0, reason: 'Completed', message } } }] } });
    }
    const job = store().read(JOBS, { name, namespace: NAMESPACE });
    const condition = { type: outcome, status: 'True', ...(reason ? { reason, message: `${reason} happened` } : {}) };
    return store().updateStatus(JOBS, { ...job, status: { ...(outcome === 'Complete' ? { succeeded: 1 } : { failed: 1 }), conditions: [condition] } });
  }
  const jobUpdate = (job: KubeObject, id: string) => new CloudEvent({
    type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id,
    subject: `/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${job.metadata?.name ?? ''}`, datacontenttype: 'application/json', data: job, mlopsroute: 'copy',
  });

  /** The real copy.py with the env of the Job the function created, its mounts pointed at local folders. */
  async function runRealCopy(job: JobObject, run: string, content: Buffer): Promise<string> {
    const src = path.join(scratch, run, 'gpu');
    const dst = path.join(scratch, run, 'shared');
    mkdirSync(path.join(src, '.runs', run, MODEL), { recursive: true });
    mkdirSync(dst, { recursive: true });
    writeFileSync(path.join(src, '.runs', run, MODEL, 'model.pkl'), content);
    const container = (job.spec.template.spec.containers as Array<{ env: Array<{ name: string; value: string }> }>)[0]!;
    const env = Object.fromEntries(container.env.filter((e) => e.name !== 'TERMINATION_LOG').map((e) => [e.name, e.value]));
    expect(env).toEqual({ SRC_ROOT: '/mnt/gpu', DST_ROOT: '/mnt/shared', RUN: run, MODEL });
    return JSON.stringify((await runScript('copy', { ...env, SRC_ROOT: src, DST_ROOT: dst })).result);
  }

  test('GPU training.succeeded creates exactly one copy Job; redelivery 3× → still one, 204', async () => {
    const run = 'predictive-analytics-aaaaaaaaaa';
    const mr = createRun(run, 'gpu', copyingStatus(run));
    for (let i = 0; i < 4; i++) {
      const res = await postEvent(served.url, trainingSucceeded(run));
      expect(res.status).toBe(204);
      clock.advance(1000);
    }
    const all = await jobs();
    expect(all).toHaveLength(1);
    const job = all[0]!;
    const labels = { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': run, 'mlops.dev/step': 'copy' };
    expect(job.metadata?.name).toBe(`${run}-copy`);
    expect(job.metadata?.labels).toEqual(labels);
    expect(job.metadata?.ownerReferences).toEqual([{ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: run, uid: mr.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    expect(job.spec).toMatchObject({ backoffLimit: 0, activeDeadlineSeconds: 30 * 60 });
    expect(job.spec.template.metadata).toEqual({ labels });
    expect(job.spec.template.spec).toEqual({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'step', image: 'registry.access.redhat.com/ubi9/python-311:latest', command: ['python3', '/opt/mlops/copy.py'],
        env: [{ name: 'SRC_ROOT', value: '/mnt/gpu' }, { name: 'DST_ROOT', value: '/mnt/shared' }, { name: 'RUN', value: run }, { name: 'MODEL', value: MODEL }, { name: 'TERMINATION_LOG', value: '/dev/termination-log' }],
        terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File',
        volumeMounts: [{ name: 'scripts', mountPath: '/opt/mlops', readOnly: true }, { name: 'data-0', mountPath: '/mnt/gpu', readOnly: true }, { name: 'data-1', mountPath: '/mnt/shared' }],
        resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '2Gi' } },
        securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
      }],
      volumes: [
        { name: 'scripts', configMap: { name: 'model-lifecycle-scripts', defaultMode: 0o555 } },
        { name: 'data-0', persistentVolumeClaim: { claimName: 'model-storage-gpu-pvc', readOnly: true } },
        { name: 'data-1', persistentVolumeClaim: { claimName: 'model-storage-pvc' } },
      ],
    });
    const status = (await getRun(run)).status;
    expect(status?.steps?.copy).toEqual({ started: '2026-11-22T10:00:00.000Z', job: `${run}-copy` });
    expect(status?.deadlines).toEqual({ run: '2026-11-22T18:00:00.000Z', step: '2026-11-22T10:30:00.000Z' });
  });

  test('the REAL copy.py result → model.copied, run Gating with the artifact; redelivery → same id, no second transition', async () => {
    const run = 'predictive-analytics-bbbbbbbbbb';
    createRun(run, 'gpu', copyingStatus(run));
    await postEvent(served.url, trainingSucceeded(run));
    const [job] = await jobs();
    const content = Buffer.alloc(5000, 7);
    const message = await runRealCopy(job!, run, content);
    const result = JSON.parse(message) as { ok: boolean; sha256: string };
    expect(result.ok).toBe(true);
    clock.set('2026-11-22T10:05:00.000Z');
    const res = await postEvent(served.url, jobUpdate(finishJob(`${run}-copy`, message, 'Complete'), 'copy-done'));
    expect(res.status).toBe(200);
    expect(res.event).toMatchObject({ type: EventTypes.modelCopied, id: `${run}.model.copied`, source: '/model-lifecycle/copy-gpu-model', subject: run, model: MODEL, run, profile: 'gpu' });
    expect(res.event?.data).toEqual({ model: MODEL, run, path: `.runs/${run}/${MODEL}/model.pkl`, bytes: 5000, sha256: result.sha256 });
    const after = await getRun(run);
    expect(after.status).toMatchObject({
      phase: 'Gating', step: 'gate',
      steps: { copy: { started: '2026-11-22T10:00:00.000Z', finished: '2026-11-22T10:05:00.000Z', outcome: 'copied', job: `${run}-copy`, message: 'copied 1 files (5000 bytes); model.pkl sha256 verified' } },
      artifact: { path: `.runs/${run}/${MODEL}/model.pkl`, bytes: 5000, sha256: result.sha256 },
    });
    expect(after.metadata.labels?.['mlops.dev/phase']).toBe('Gating');
    const version = after.metadata.resourceVersion;
    for (let i = 0; i < 2; i++) {
      const again = await postEvent(served.url, jobUpdate(store().read(JOBS, { name: `${run}-copy`, namespace: NAMESPACE }), `copy-done-${i}`));
      expect(again.event?.id).toBe(res.event?.id);
    }
    expect((await getRun(run)).metadata.resourceVersion).toBe(version);
    // A redelivered training.succeeded after the copy creates nothing.
    expect((await postEvent(served.url, trainingSucceeded(run))).status).toBe(204);
    expect(await jobs()).toHaveLength(1);
  });

  test('the REAL copy.py on a missing source → run.failed; run Failed, lock freed; redelivery → same id', async () => {
    const run = 'predictive-analytics-cccccccccc';
    createRun(run, 'gpu', copyingStatus(run));
    store().create(LEASES, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `model-lock-${MODEL}`, namespace: NAMESPACE }, spec: { holderIdentity: run, leaseDurationSeconds: 3600 } });
    await postEvent(served.url, trainingSucceeded(run));
    const [job] = await jobs();
    const container = (job!.spec.template.spec.containers as Array<{ env: Array<{ name: string; value: string }> }>)[0]!;
    const env = Object.fromEntries(container.env.filter((e) => e.name !== 'TERMINATION_LOG').map((e) => [e.name, e.value]));
    mkdirSync(path.join(scratch, run, 'gpu'), { recursive: true });
    mkdirSync(path.join(scratch, run, 'shared'), { recursive: true });
    const message = JSON.stringify((await runScript('copy', { ...env, SRC_ROOT: path.join(scratch, run, 'gpu'), DST_ROOT: path.join(scratch, run, 'shared') })).result);
    clock.set('2026-11-22T10:05:00.000Z');
    const res = await postEvent(served.url, jobUpdate(finishJob(`${run}-copy`, message, 'Complete'), 'copy-failed'));
    expect(res.status).toBe(200);
    const expectedMessage = `copy failed: source directory missing: .runs/${run}/${MODEL}`;
    expect(res.event).toMatchObject({ type: EventTypes.runFailed, id: `${run}.run.failed`, profile: 'gpu' });
    expect(res.event?.data).toEqual({ model: MODEL, run, step: 'copy', reason: 'copy-failed', message: expectedMessage });
    const after = await getRun(run);
    expect(after.status).toMatchObject({
      phase: 'Failed', step: 'copy', message: expectedMessage, finishedAt: '2026-11-22T10:05:00.000Z',
      steps: { copy: { finished: '2026-11-22T10:05:00.000Z', outcome: 'copy-failed', message: expectedMessage } },
    });
    expect(await cluster.kube.get(Resources.lease, `model-lock-${MODEL}`)).toBeUndefined();
    const version = after.metadata.resourceVersion;
    const again = await postEvent(served.url, jobUpdate(store().read(JOBS, { name: `${run}-copy`, namespace: NAMESPACE }), 'copy-failed-2'));
    expect(again.event?.id).toBe(res.event?.id);
    expect(again.event?.data).toEqual(res.event?.data);
    expect((await getRun(run)).metadata.resourceVersion).toBe(version);
  });

  test('a copy Job killed on its deadline without a result → run.failed job-failed', async () => {
    const run = 'predictive-analytics-dddddddddd';
    createRun(run, 'gpu', copyingStatus(run));
    await postEvent(served.url, trainingSucceeded(run));
    const res = await postEvent(served.url, jobUpdate(finishJob(`${run}-copy`, undefined, 'Failed', 'DeadlineExceeded'), 'copy-deadline'));
    expect(res.event?.type).toBe(EventTypes.runFailed);
    expect(res.event?.data).toEqual({ model: MODEL, run, step: 'copy', reason: 'job-failed', message: `job ${run}-copy failed: DeadlineExceeded: DeadlineExceeded happened; job ${run}-copy left no termination message` });
    expect((await getRun(run)).status?.phase).toBe('Failed');
  });

  test('a copy Job whose pod the Job controller cannot create (FailedCreate) fails the run at once with the reason', async () => {
    const run = 'predictive-analytics-eeeeeeeeee';
    createRun(run, 'gpu', copyingStatus(run));
    // The real simulated Job controller, with an admission that refuses its pod (a quota, as the API server words it).
    const denial = `exceeded quota: compute-resources, requested: limits.memory=2Gi, used: limits.memory=0, limited: limits.memory=1Gi`;
    const runner = await startJobRunner({
      store: store(), stateDir: scratch, namespace: NAMESPACE, mode: 'test', python: '/usr/bin/python3', failedCreateBackoffMs: 60_000,
      admitPod: (pod) => { throw new ApiError(403, 'Forbidden', `pods "${pod.metadata?.name ?? ''}" is forbidden: ${denial}`); },
    });
    try {
      await postEvent(served.url, trainingSucceeded(run));
      const started = await waitFor('the Job controller to give up on the pod', () => {
        const j = store().get(JOBS, { name: `${run}-copy`, namespace: NAMESPACE });
        return (j?.status as { startTime?: string } | undefined)?.startTime ? j : undefined;
      });
      // What the ApiServerSource delivers: the Job's status update (startTime, nothing active).
      const res = await postEvent(served.url, jobUpdate(started, 'copy-failedcreate'));
      expect(res.status).toBe(200);
      expect(res.event?.type).toBe(EventTypes.runFailed);
      const data = res.event?.data as { reason: string; message: string };
      expect(data.reason).toBe('job-failed');
      expect(data.message).toMatch(new RegExp(`^job ${run}-copy failed: FailedCreate: Error creating: pods "${run}-copy-[a-z0-9]{5}" is forbidden: exceeded quota`));
      expect(data.message).toContain(`job ${run}-copy could not create its pod`);
      expect((await getRun(run)).status?.phase).toBe('Failed');
    } finally {
      await runner.close();
    }
  });

  test('a started Job without a pod and without a FailedCreate Event yet is retried (503), not judged', async () => {
    const run = 'predictive-analytics-ffffffffff';
    createRun(run, 'gpu', copyingStatus(run));
    await postEvent(served.url, trainingSucceeded(run));
    const job = store().read(JOBS, { name: `${run}-copy`, namespace: NAMESPACE });
    const started = store().updateStatus(JOBS, { ...job, status: { startTime: '2026-11-22T10:00:01Z' } });
    const res = await postEvent(served.url, jobUpdate(started, 'copy-no-event'));
    expect(res.status).toBe(503);
    expect((await getRun(run)).status?.phase).toBe('Copying');
  });

  test('CPU events, running Jobs and foreign Jobs are ignored without API calls; malformed input is a 400', async () => {
    cluster.emulator.resetRequests();
    expect((await postEvent(served.url, trainingSucceeded('anomaly-detector-0000000000', 'cpu'))).status).toBe(204);
    const running = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'x-copy', namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/run': 'x', 'mlops.dev/step': 'copy' } }, status: { active: 1 } };
    expect((await postEvent(served.url, jobUpdate(running, 'running'))).status).toBe(204);
    const gateJob = { ...running, metadata: { ...running.metadata, name: 'x-gate', labels: { ...running.metadata.labels, 'mlops.dev/step': 'gate' } }, status: { conditions: [{ type: 'Complete', status: 'True' }] } };
    expect((await postEvent(served.url, jobUpdate(gateJob, 'gate-job'))).status).toBe(204);
    expect(cluster.emulator.requests).toHaveLength(0);
    const bad = await postEvent(served.url, new CloudEvent({ type: EventTypes.trainingSucceeded, source: 's', id: 'bad', datacontenttype: 'application/json', data: { model: MODEL, run: 'x', profile: 'tpu' } }));
    expect(bad.status).toBe(400);
    expect(await jobs()).toHaveLength(0);
  });
});
