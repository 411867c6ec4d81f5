import { CloudEvent } from 'cloudevents';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../dev/emulator/index.ts';
import { startJobRunner } from '../../dev/sim/job-runner.ts';
import { waitFor } from '../../dev/sim/testkit.ts';
import { EventTypes, buildEvent } from '../../events/index.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { ManualClock, NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step } from './index.ts';

const MODEL = 'anomaly-detector';
const PREV = 'anomaly-detector-00000000p0';
const GVR = {
  modelruns: { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' },
  jobs: { group: 'batch', version: 'v1', resource: 'jobs' },
  pods: { group: '', version: 'v1', resource: 'pods' },
  leases: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' },
  isvcs: { group: 'serving.kserve.io', version: 'v1beta1', resource: 'inferenceservices' },
} as const;

type Isvc = KubeObject & { spec: { predictor: { annotations?: Record<string, string> } & Record<string, unknown> } };

describe('restart-predictor over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let served: ServedStep;
  const clock = new ManualClock('2026-11-22T10:00:00.000Z');
  let seq = 0;
  let RUN = '';

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    served = await serveForTest(step, { cluster, sinkUrl: sink.url, clock });
  });
  afterAll(async () => { await served.close(); await sink.close(); await cluster.close(); });
  beforeEach(() => {
    for (const gvr of Object.values(GVR)) cluster.emulator.store.deleteCollection(gvr, { namespace: NAMESPACE });
    RUN = `anomaly-detector-0000000${(seq++).toString(16).padStart(3, '0')}`;
    clock.set('2026-11-22T10:00:00.000Z');
    sink.events.length = 0;
    createIsvc(PREV);
    cluster.emulator.resetRequests();
  });

  const store = () => cluster.emulator.store;

  function createIsvc(release?: string): void {
    store().create(GVR.isvcs, {
      apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService',
      metadata: { name: MODEL, namespace: NAMESPACE, labels: { app: MODEL }, annotations: { 'serving.kserve.io/deploymentMode': 'RawDeployment' } },
      spec: { predictor: {
        ...(release ? { annotations: { 'mlops.dev/model-release': release, 'prometheus.io/scrape': 'true' } } : {}),
        minReplicas: 1,
        model: { modelFormat: { name: 'sklearn' }, storageUri: 'pvc://model-storage-pvc/anomaly-detector', args: ['--model_dir=/mnt/models/anomaly-detector'] },
      } },
    });
  }

  function createRun(status: ModelRunStatus, lockHolder = true): void {
    const stored = store().create(GVR.modelruns, {
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
      metadata: { name: RUN, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': RUN } },
      spec: { model: MODEL, trigger: 'schedule', idempotencyKey: `k-${RUN}`, profile: 'cpu' },
    });
    store().updateStatus(GVR.modelruns, { ...stored, status });
    if (lockHolder) {
      store().create(GVR.leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `model-lock-${MODEL}`, namespace: NAMESPACE }, spec: { holderIdentity: RUN, leaseDurationSeconds: 3600 } });
    }
  }

  const getRun = async (): Promise<ModelRun> => (await cluster.kube.get<ModelRun & KubeObject>({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', group: 'lifecycle.mlops.dev', version: 'v1alpha1', kind: 'ModelRun', plural: 'modelruns', namespaced: true }, RUN))!;
  const getIsvc = (): Isvc => store().get(GVR.isvcs, { name: MODEL, namespace: NAMESPACE }) as unknown as Isvc;
  const jobs = (): KubeObject[] => store().list(GVR.jobs, { namespace: NAMESPACE });
  const isvcPatches = (): number => cluster.emulator.requests.filter((r) => r.verb === 'patch' && r.resource === 'inferenceservices').length;

  function approved(): CloudEvent<unknown> {
    return buildEvent(EventTypes.modelApproved, {
      step: 'gate-health',
      data: {
        model: MODEL, run: RUN, path: `.runs/${RUN}/${MODEL}/model.pkl`, bytes: 183_000, sha256: 'b'.repeat(64),
        checks: [{ name: 'exists', ok: true }], probe: { rows: [[0.1, 0.2]], expected: [1] },
      },
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  }

  function deploymentFailed(): CloudEvent<unknown> {
    return buildEvent(EventTypes.deploymentFailed, { step: 'verify-endpoint', data: { model: MODEL, run: RUN, release: RUN, reason: 'mismatch', message: 'pod x: row 0 expected 1, got -1' } });
  }

  /** What the Job controller and kubelet would do: a terminated `step` container with the result, then the condition. */
  function finishJob(name: string, result: unknown, condition: 'Complete' | 'Failed' = 'Complete'): KubeObject {
    const pod = store().create(GVR.pods, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: `${name}-abcde`, namespace: NAMESPACE, labels: { 'batch.kubernetes.io/job-name': name, 'job-name': name } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'step', image: 'python' }] },
    });
    store().updateStatus(GVR.pods, { ...pod, status: { phase: condition === 'Complete' ? 'Succeeded' : 'Failed', containerStatuses: [{ name: 'step', ready: false, restartCount: 0, image: 'python', state: { terminated: { exitCode: 0, reason: 'Completed', message: JSON.stringify(result) } } }] } });
    const job = store().get(GVR.jobs, { name, namespace: NAMESPACE })!;
    return store().updateStatus(GVR.jobs, { ...job, status: { succeeded: condition === 'Complete' ? 1 : 0, failed: condition === 'Failed' ? 1 : 0, conditions: [{ type: condition, status: 'True', lastTransitionTime: '2026-11-22T10:01:00Z' }] } });
  }

  let updateSeq = 0;
  function jobUpdate(job: KubeObject): CloudEvent<unknown> {
    return new CloudEvent({
      type: 'dev.knative.apiserver.resource.update', source: `https://kubernetes.default.svc`, id: `upd-${updateSeq++}`,
      subject: `/apis/batch/v1/namespaces/${NAMESPACE}/jobs/${job.metadata?.name}`, datacontenttype: 'application/json', mlopsroute: 'promote', data: job,
    });
  }

  const promoteResult = (release: string, previousRelease: string | null, ok = true) => ({
    ok, release, previousRelease, sha256: 'b'.repeat(64), bytes: 183_000, servedPath: `${MODEL}/model.pkl`, kept: [release], pruned: [], ...(ok ? {} : { error: 'staged model missing' }),
  });

  test('model.approved creates exactly one promote Job (redelivered 3×) matching the manifest and records it', async () => {
    createRun({ phase: 'Promoting', step: 'promote', steps: { gate: { finished: '2026-11-22T09:59:00.000Z', outcome: 'approved' } } });
    for (let i = 0; i < 3; i++) {
      const res = await postEvent(served.url, approved());
      expect(res.status).toBe(204);
    }
    const all = jobs();
    expect(all).toHaveLength(1);
    const job = all[0]!;
    const run = await getRun();
    expect(job.metadata?.name).toBe(`${RUN}-promote`);
    expect(job.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': RUN, 'mlops.dev/step': 'promote' });
    expect(job.metadata?.ownerReferences).toEqual([{ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: RUN, uid: run.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    const spec = job.spec as { activeDeadlineSeconds: number; backoffLimit: number; template: { spec: { containers: Array<Record<string, unknown>>; volumes: unknown[] } } };
    expect(spec.activeDeadlineSeconds).toBe(600);
    expect(spec.backoffLimit).toBe(0);
    const container = spec.template.spec.containers[0]!;
    expect(container).toMatchObject({
      name: 'step', image: 'registry.access.redhat.com/ubi9/python-311:latest', command: ['python3', '/opt/mlops/promote.py'],
      env: [
        { name: 'ROOT', value: '/mnt/shared' }, { name: 'MODEL', value: MODEL }, { name: 'RUN', value: RUN }, { name: 'SOURCE', value: 'staging' },
        { name: 'KEEP', value: '5' }, { name: 'TERMINATION_LOG', value: '/dev/termination-log' },
      ],
      volumeMounts: [{ name: 'scripts', mountPath: '/opt/mlops', readOnly: true }, { name: 'data-0', mountPath: '/mnt/shared' }],
    });
    expect(spec.template.spec.volumes).toEqual([
      { name: 'scripts', configMap: { name: 'model-lifecycle-scripts', defaultMode: 0o555 } },
      { name: 'data-0', persistentVolumeClaim: { claimName: 'model-storage-pvc' } },
    ]);
    expect(run.status?.steps?.promote).toEqual({ started: '2026-11-22T10:00:00.000Z', job: `${RUN}-promote` });
    expect(run.status?.phase).toBe('Promoting');
    expect(isvcPatches()).toBe(0);
  });

  test('a pinned model: the approved run ends Succeeded without a promote Job, saying which release is pinned and by whom; the predictor is untouched (redelivered 3×)', async () => {
    store().create({ group: '', version: 'v1', resource: 'configmaps' }, {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `model-controls-${MODEL}`, namespace: NAMESPACE },
      data: { pinnedRelease: PREV, pinnedBy: 'bob@example.com', pinnedAt: '2026-11-22T08:00:00Z' },
    });
    try {
      createRun({ phase: 'Promoting', step: 'promote', gate: { verdict: 'approved' }, steps: { gate: { finished: '2026-11-22T09:59:00.000Z', outcome: 'approved' } } });
      for (let i = 0; i < 3; i++) expect((await postEvent(served.url, approved())).status).toBe(204);
      expect(jobs()).toHaveLength(0);
      const run = await getRun();
      expect(run.status).toMatchObject({
        phase: 'Succeeded',
        message: `approved but not promoted: release ${PREV} pinned by bob@example.com at 2026-11-22T08:00:00Z (mlops unpin ${MODEL} to promote again)`,
        release: { pinned: { release: PREV, by: 'bob@example.com' } },
        steps: { promote: { outcome: 'pinned' } },
      });
      expect(run.status?.release?.promoted).toBeUndefined();
      expect(getIsvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(PREV);
      expect(isvcPatches()).toBe(0);
      expect(store().get(GVR.leases, { name: `model-lock-${MODEL}`, namespace: NAMESPACE })).toBeUndefined();
    } finally {
      store().delete({ group: '', version: 'v1', resource: 'configmaps' }, { name: `model-controls-${MODEL}`, namespace: NAMESPACE });
    }
  });

  test('the promote Job ending ok rolls the predictor by its annotation only and replies predictor.restarted (once)', async () => {
    createRun({ phase: 'Promoting', step: 'promote', steps: { gate: { finished: '2026-11-22T09:59:00.000Z', outcome: 'approved' } } });
    await postEvent(served.url, approved());
    const before = getIsvc();
    clock.set('2026-11-22T10:02:00.000Z');
    const job = finishJob(`${RUN}-promote`, promoteResult(RUN, PREV));

    const res = await postEvent(served.url, jobUpdate(job));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.predictorRestarted);
    expect(res.event?.id).toBe(`${RUN}.predictor.restarted`);
    expect(res.event?.data).toEqual({ model: MODEL, run: RUN, release: RUN, previousRelease: PREV, inferenceService: MODEL, restartedAt: '2026-11-22T10:02:00.000Z' });

    const after = getIsvc();
    expect(after.spec.predictor.annotations).toEqual({ 'mlops.dev/model-release': RUN, 'prometheus.io/scrape': 'true' });
    const strip = (o: Isvc) => {
      const c = structuredClone(o) as Isvc & { metadata: Record<string, unknown> };
      delete c.metadata.resourceVersion; delete c.metadata.generation; delete c.metadata.managedFields;
      delete c.spec.predictor.annotations?.['mlops.dev/model-release'];
      return c;
    };
    expect(strip(after)).toEqual(strip(before));

    const run = await getRun();
    expect(run.status).toMatchObject({
      phase: 'Verifying', step: 'verify',
      release: { promoted: RUN, replaced: PREV },
      deadlines: { step: '2026-11-22T10:17:00.000Z' },
      steps: { promote: { started: '2026-11-22T10:00:00.000Z', finished: '2026-11-22T10:02:00.000Z', outcome: 'promoted', job: `${RUN}-promote` } },
    });
    expect(run.metadata.labels?.['mlops.dev/phase']).toBe('Verifying');

    // The Job's later updates (and redeliveries) change nothing.
    for (let i = 0; i < 3; i++) expect((await postEvent(served.url, jobUpdate(job))).status).toBe(204);
    expect(isvcPatches()).toBe(1);
    expect(jobs()).toHaveLength(1);
    // A running Job's updates are ignored without reading anything.
    cluster.emulator.resetRequests();
    const running = { ...job, status: { active: 1 } };
    expect((await postEvent(served.url, jobUpdate(running))).status).toBe(204);
    expect(cluster.emulator.requests).toEqual([]);
  });

  test('a failed promotion fails the run, frees the lock and leaves the predictor alone', async () => {
    createRun({ phase: 'Promoting', step: 'promote', steps: { gate: { finished: '2026-11-22T09:59:00.000Z', outcome: 'approved' } } });
    await postEvent(served.url, approved());
    const job = finishJob(`${RUN}-promote`, promoteResult(RUN, PREV, false));
    const res = await postEvent(served.url, jobUpdate(job));
    expect(res.event?.type).toBe(EventTypes.runFailed);
    expect(res.event?.data).toEqual({ model: MODEL, run: RUN, step: 'promote', reason: 'promote-failed', message: `promotion of ${RUN} failed: staged model missing` });
    expect((await getRun()).status).toMatchObject({ phase: 'Failed', steps: { promote: { outcome: 'failed', message: 'staged model missing' } } });
    expect(getIsvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(PREV);
    expect(isvcPatches()).toBe(0);
    expect(store().get(GVR.leases, { name: `model-lock-${MODEL}`, namespace: NAMESPACE })).toBeUndefined();
  });

  test('a promote Job whose pod cannot be created (FailedCreate) fails the promotion at once with the controller\'s reason', async () => {
    createRun({ phase: 'Promoting', step: 'promote', gate: { verdict: 'approved' }, steps: { gate: { finished: '2026-11-22T09:59:00.000Z', outcome: 'approved' } } });
    const scratch = mkdtempSync(join(tmpdir(), 'promote-failedcreate-'));
    const runner = await startJobRunner({
      store: store(), stateDir: scratch, namespace: NAMESPACE, mode: 'test', python: '/usr/bin/python3', failedCreateBackoffMs: 60_000,
      admitPod: (pod) => { throw new ApiError(403, 'Forbidden', `pods "${pod.metadata?.name ?? ''}" is forbidden: violates PodSecurity "restricted:latest": runAsUser=0 (pod must not set runAsUser=0)`); },
    });
    try {
      await postEvent(served.url, approved());
      const started = await waitFor('the Job controller to give up on the pod', () => {
        const j = store().get(GVR.jobs, { name: `${RUN}-promote`, namespace: NAMESPACE });
        return (j?.status as { startTime?: string } | undefined)?.startTime ? j : undefined;
      });
      const res = await postEvent(served.url, jobUpdate(started));
      expect(res.event?.type).toBe(EventTypes.runFailed);
      const data = res.event?.data as { reason: string; message: string };
      expect(data.reason).toBe('promote-failed');
      expect(data.message).toMatch(new RegExp(`^promotion of ${RUN} failed: job ${RUN}-promote could not create its pod: FailedCreate: Error creating: pods "${RUN}-promote-[a-z0-9]{5}" is forbidden: violates PodSecurity`));
      expect((await getRun()).status?.phase).toBe('Failed');
      expect(isvcPatches()).toBe(0);
    } finally {
      await runner.close();
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  test('deployment.failed with a previous release: one rollback Job; then the restore is recorded before the annotation goes back, and the run waits Verifying for the check (each redelivered 3×)', async () => {
    createRun({ phase: 'Verifying', step: 'verify', release: { promoted: RUN, replaced: PREV }, steps: { promote: { started: '2026-11-22T09:58:00.000Z', finished: '2026-11-22T09:59:00.000Z', outcome: 'promoted' }, verify: { finished: '2026-11-22T09:59:30.000Z', outcome: 'mismatch', message: 'pod x: row 0 expected 1, got -1' } } });
    store().patchMerge(GVR.isvcs, { name: MODEL, namespace: NAMESPACE }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': RUN } } } });
    for (let i = 0; i < 3; i++) expect((await postEvent(served.url, deploymentFailed())).status).toBe(204);
    expect(jobs()).toHaveLength(1);
    const rollback = jobs()[0]!;
    expect(rollback.metadata?.name).toBe(`${RUN}-rollback`);
    expect(rollback.metadata?.labels?.['mlops.dev/step']).toBe('rollback');
    const env = (rollback.spec as { template: { spec: { containers: Array<{ env: unknown[] }> } } }).template.spec.containers[0]!.env;
    expect(env).toEqual([
      { name: 'ROOT', value: '/mnt/shared' }, { name: 'MODEL', value: MODEL }, { name: 'RUN', value: PREV }, { name: 'SOURCE', value: 'release' },
      { name: 'KEEP', value: '5' }, { name: 'TERMINATION_LOG', value: '/dev/termination-log' },
    ]);
    expect((await getRun()).status?.steps?.rollback).toEqual({ started: '2026-11-22T10:00:00.000Z', job: `${RUN}-rollback` });

    clock.set('2026-11-22T10:03:00.000Z');
    const job = finishJob(`${RUN}-rollback`, promoteResult(PREV, RUN));
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await postEvent(served.url, jobUpdate(job)));
    // Nothing is announced yet: verify-endpoint announces (and ends the run) once the restored release answered.
    expect(replies.map((r) => r.status)).toEqual([204, 204, 204]);
    expect(getIsvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(PREV);
    expect(isvcPatches()).toBe(1);
    const run = await getRun();
    expect(run.status).toMatchObject({
      phase: 'Verifying', step: 'rollback', release: { promoted: RUN, replaced: PREV },
      rollback: { release: PREV, startedAt: '2026-11-22T10:03:00.000Z' },
      steps: { rollback: { outcome: 'restored', finished: '2026-11-22T10:03:00.000Z' } },
    });
    expect(run.status?.rollback?.verified).toBeUndefined();
    // The lock stays held until the run ends.
    expect(store().get(GVR.leases, { name: `model-lock-${MODEL}`, namespace: NAMESPACE })).toBeDefined();

    // A late redelivery of deployment.failed changes nothing and says nothing.
    const late = await postEvent(served.url, deploymentFailed());
    expect(late.status).toBe(204);
    expect(jobs()).toHaveLength(1);
    expect(isvcPatches()).toBe(1);
  });

  // issue 12 (crash-safe order, applied to the rollback): stopped after recording the restore, before the patch.
  test('bug: restore recorded but the predictor never patched back — the reconcile\'s poke finishes it', async () => {
    createRun({
      phase: 'Verifying', step: 'rollback', release: { promoted: RUN, replaced: PREV }, rollback: { release: PREV, startedAt: '2026-11-22T09:59:50.000Z' },
      steps: { promote: { finished: '2026-11-22T09:59:00.000Z', outcome: 'promoted' }, verify: { finished: '2026-11-22T09:59:30.000Z', outcome: 'mismatch' }, rollback: { started: '2026-11-22T09:59:35.000Z', finished: '2026-11-22T09:59:50.000Z', outcome: 'restored' } },
    });
    store().patchMerge(GVR.isvcs, { name: MODEL, namespace: NAMESPACE }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': RUN } } } });
    const poke = buildEvent(EventTypes.runReconcile, { step: 'watchdog', data: { model: MODEL, run: RUN, target: 'restart-predictor', reason: `predictor not rolled back to ${PREV}` }, id: `${RUN}.reconcile.x` });
    for (let i = 0; i < 2; i++) expect((await postEvent(served.url, poke)).status).toBe(204);
    expect(getIsvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(PREV);
    expect(isvcPatches()).toBe(1);
    expect((await getRun()).status?.phase).toBe('Verifying');
  });

  // issue 12: "restart-predictor patches the InferenceService before it writes Verifying; the watchdog can fail the run
  // in between" — Verifying is now written first; a step stopped before the patch is finished by the reconcile.
  test('bug: stopped between recording Verifying and the patch — the reconcile\'s poke patches and announces predictor.restarted', async () => {
    createRun({ phase: 'Verifying', step: 'verify', release: { promoted: RUN, replaced: PREV }, steps: { promote: { started: '2026-11-22T09:58:00.000Z', finished: '2026-11-22T09:59:00.000Z', outcome: 'promoted' } } });
    const poke = buildEvent(EventTypes.runReconcile, { step: 'watchdog', data: { model: MODEL, run: RUN, target: 'restart-predictor', reason: 'predictor not rolled to the release' }, id: `${RUN}.reconcile.p` });
    const res = await postEvent(served.url, poke);
    expect(res.event?.type).toBe(EventTypes.predictorRestarted);
    expect(getIsvc().spec.predictor.annotations?.['mlops.dev/model-release']).toBe(RUN);
    expect((await postEvent(served.url, poke)).status).toBe(204); // done: nothing more
    expect(isvcPatches()).toBe(1);
  });

  // issue 12: "A promote Job can also start after the watchdog failed the run".
  test('bug: the watchdog fails the run while its promote Job is being created — the Job is deleted at once, nothing promoted', async () => {
    createRun({ phase: 'Promoting', step: 'promote', steps: { gate: { finished: '2026-11-22T09:59:00.000Z', outcome: 'approved' } } });
    const stop = store().onEvent((e) => {
      if (e.storageKey !== 'batch/jobs' || e.type !== 'ADDED') return;
      // The deadline fires between the Job's create and the step's next read.
      const run = store().get(GVR.modelruns, { name: RUN, namespace: NAMESPACE })!;
      store().updateStatus(GVR.modelruns, { ...run, status: { ...(run.status as object), phase: 'Failed', message: 'deadline exceeded in promote' } });
    });
    try {
      expect((await postEvent(served.url, approved())).status).toBe(204);
    } finally { stop(); }
    expect(cluster.emulator.requests.filter((r) => r.resource === 'jobs' && r.verb === 'create' && r.status === 201)).toHaveLength(1);
    expect(cluster.emulator.requests.filter((r) => r.resource === 'jobs' && r.verb === 'delete')).toHaveLength(1);
    expect(jobs().filter((j) => !(j.metadata as { deletionTimestamp?: string } | undefined)?.deletionTimestamp)).toEqual([]);
    expect((await getRun()).status?.phase).toBe('Failed');
  });

  // issue 12: "deployment.failed is acted on without checking the recorded verify verdict".
  test('bug: a deployment.failed for a run whose verify record says verified is refused (422): no rollback Job, predictor untouched', async () => {
    createRun({ phase: 'Verifying', step: 'verify', release: { promoted: RUN, replaced: PREV }, steps: { promote: { finished: '2026-11-22T09:59:00.000Z', outcome: 'promoted' }, verify: { finished: '2026-11-22T09:59:30.000Z', outcome: 'verified', message: 'verified 3 predictions on 1 new pod(s): p' } } });
    store().patchMerge(GVR.isvcs, { name: MODEL, namespace: NAMESPACE }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': RUN } } } });
    const res = await postEvent(served.url, deploymentFailed());
    expect(res.status).toBe(422);
    expect(jobs()).toEqual([]);
    expect(isvcPatches()).toBe(0);
    expect((await getRun()).status?.phase).toBe('Verifying');
  });

  test('deployment.failed without a previous release: run Failed, predictor untouched, restoredRelease null (redelivered 3×)', async () => {
    createRun({ phase: 'Verifying', step: 'verify', release: { promoted: RUN, replaced: null }, steps: { verify: { finished: '2026-11-22T09:59:30.000Z', outcome: 'mismatch' } } });
    store().patchMerge(GVR.isvcs, { name: MODEL, namespace: NAMESPACE }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': RUN } } } });
    const before = getIsvc();
    cluster.emulator.resetRequests();
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await postEvent(served.url, deploymentFailed()));
    const message = `no previous release to roll back to; ${RUN} is still served`;
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(r.event?.type).toBe(EventTypes.deploymentRolledback);
      expect(r.event?.id).toBe(`${RUN}.deployment.rolledback`);
      expect(r.event?.data).toEqual({ model: MODEL, run: RUN, failedRelease: RUN, restoredRelease: null, message });
    }
    expect(jobs()).toHaveLength(0);
    expect(isvcPatches()).toBe(0);
    expect(getIsvc()).toEqual(before);
    const run = await getRun();
    expect(run.status).toMatchObject({ phase: 'Failed', message, release: { promoted: RUN, replaced: null, restored: null }, steps: { rollback: { outcome: 'not-rolled-back' } } });
    expect(store().get(GVR.leases, { name: `model-lock-${MODEL}`, namespace: NAMESPACE })).toBeUndefined();
  });

  test('events that are not ours are answered 204; malformed ones 400', async () => {
    const other = new CloudEvent({ type: 'dev.mlops.training.started.v1', source: '/x', id: 'o1', data: {} });
    expect((await postEvent(served.url, other)).status).toBe(204);
    const foreignJob = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'someone-elses', namespace: NAMESPACE, labels: { 'mlops.dev/step': 'promote' } }, status: { conditions: [{ type: 'Complete', status: 'True' }] } };
    expect((await postEvent(served.url, jobUpdate(foreignJob))).status).toBe(204);
    const bad = new CloudEvent({ type: EventTypes.modelApproved, source: '/x', id: 'b1', datacontenttype: 'application/json', data: { model: MODEL } });
    const res = await postEvent(served.url, bad);
    expect(res.status).toBe(400);
    expect(jobs()).toHaveLength(0);
  });
});
