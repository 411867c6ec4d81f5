import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import { CloudEvent } from 'cloudevents';
import { EventTypes, type TrainingRequested } from '../../events/index.ts';
import { parseCatalog, type Catalog } from '../../runtime/catalog.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { runNameFor } from '../../runtime/labels.ts';
import { acquireLock, enqueueOnLock, type LeaseObject } from '../../runtime/lock.ts';
import { getRun, updateRunStatus } from '../../runtime/modelrun.ts';
import { Resources, type ModelRun, type ModelRunStatus } from '../../runtime/resources.ts';
import { ManualClock, NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step as startTraining } from '../start-training/index.ts';
import { modelRunManifest, nvjManifest } from '../start-training/manifests.ts';
import { scheduleKey } from '../start-training/request.ts';
import { MEMORY_CONFIGMAP } from './effects.ts';
import { step } from './index.ts';

const CATALOG = parseCatalog(`
defaults:
  notebook: { gitUrl: https://example.com/repo.git, gitRef: main, image: quay.io/x/nb:1 }
models:
  - name: anomaly-detector
    inferenceService: anomaly-detector
    notebook: { path: nb/a.ipynb }
    schedule: { cron: "0 2 * * 0", timezone: UTC }
    features: { count: 45 }
    output: { kind: label, labels: [1, -1] }
  - name: predictive-analytics
    inferenceService: predictive-analytics
    notebook: { path: nb/p.ipynb }
    profile: gpu
    features: { count: 5 }
    output: { kind: regression, width: 5 }
`);
const model = (name: string) => CATALOG.models.find((m) => m.name === name)!;

const SLOT = '2026-11-22T02:00:00.000Z';
const SUNDAY = '2026-11-22T10:00:00.000Z'; // eight hours after the slot
const MONDAY = '2026-11-23T09:00:00.000Z';

let tickNo = 0;
const tick = (data: object = { watchdog: true }): CloudEvent<unknown> => new CloudEvent({
  type: 'dev.knative.sources.ping', source: `/apis/v1/namespaces/${NAMESPACE}/pingsources/watchdog`, id: `tick-${++tickNo}`, datacontenttype: 'application/json', data,
});

describe('watchdog over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let served: ServedStep;
  const clock = new ManualClock(SUNDAY);

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    served = await serveForTest(step, { cluster, sinkUrl: sink.url, clock, catalog: CATALOG });
  });
  afterAll(async () => { await served.close(); await sink.close(); await cluster.close(); });
  beforeEach(() => {
    clock.set(SUNDAY);
    sink.events.length = 0;
    const collections = [
      { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' },
      { group: 'mlops.mlops.dev', version: 'v1alpha1', resource: 'notebookvalidationjobs' },
      { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' },
      { group: 'batch', version: 'v1', resource: 'jobs' },
      { group: '', version: 'v1', resource: 'configmaps' },
    ];
    for (const c of collections) cluster.emulator.store.deleteCollection(c, { namespace: NAMESPACE });
  });
  // Sunday's slot counts as caught up unless a test is about catch-up, so each test sees only its own events.
  beforeEach(async () => {
    await cluster.kube.create(Resources.configMap, { metadata: { name: MEMORY_CONFIGMAP }, data: { 'anomaly-detector': SLOT } });
  });

  /** A ModelRun as start-training makes it, then the world arranged: the given status written straight to the API. */
  async function createRun(modelName: string, key: string, status: ModelRunStatus): Promise<ModelRun> {
    const name = runNameFor(modelName, key);
    await cluster.kube.create(Resources.modelRun, modelRunManifest(name, { model: modelName, trigger: 'manual' }, model(modelName), key));
    await cluster.kube.mergePatch(Resources.modelRun, name, { status }, { subresource: 'status' });
    const run = await getRun(cluster.kube, name);
    if (!run) throw new Error('run not created');
    return run;
  }

  const minutesAgo = (m: number): string => new Date(clock.now().getTime() - m * 60_000).toISOString();
  const minutesAhead = (m: number): string => new Date(clock.now().getTime() + m * 60_000).toISOString();

  test('a run past its training deadline: NVJ deleted, run Failed, lock freed, queued request re-submitted, run.failed sent once', async () => {
    const run = await createRun('anomaly-detector', 'manual/stuck', {
      phase: 'Training', step: 'training', startedAt: minutesAgo(300),
      steps: { training: { started: minutesAgo(300), job: 'x' } }, deadlines: { step: minutesAgo(60), run: minutesAhead(60) },
    });
    const name = run.metadata.name ?? '';
    await cluster.kube.create(Resources.notebookValidationJob, nvjManifest(run, model('anomaly-detector')));
    expect(await acquireLock(cluster.kube, 'anomaly-detector', name, 3600, new Date(minutesAgo(300)))).toEqual({ acquired: true });
    const lease = await cluster.kube.get<LeaseObject>(Resources.lease, 'model-lock-anomaly-detector');
    const queued: TrainingRequested = { model: 'anomaly-detector', trigger: 'manual', requestedBy: 'tester', provenance: { eventSource: '/cli', eventId: 'waiting-1' } };
    await enqueueOnLock(cluster.kube, lease!, queued);

    const res = await postEvent(served.url, tick());
    expect(res.status).toBe(204);
    expect(await cluster.kube.get(Resources.notebookValidationJob, name)).toBeUndefined();
    expect(await cluster.kube.get(Resources.lease, 'model-lock-anomaly-detector')).toBeUndefined();
    const failed = await getRun(cluster.kube, name);
    expect(failed?.status).toMatchObject({
      phase: 'Failed', step: 'training', message: 'deadline exceeded in training after 300 min', finishedAt: SUNDAY,
      steps: { training: { finished: SUNDAY, outcome: 'Failed', message: 'deadline exceeded in training after 300 min' } },
    });
    expect(failed?.metadata.labels?.['mlops.dev/phase']).toBe('Failed');
    expect(sink.events.map((e) => [e.type, e.id])).toEqual([
      [EventTypes.trainingRequested, `${name}.queued.training.requested`],
      [EventTypes.runFailed, `${name}.run.failed`],
    ]);
    expect(sink.events[0]?.data).toEqual({ ...queued, provenance: { ...queued.provenance, queuedFrom: name } });
    expect(sink.events[1]?.data).toEqual({ model: 'anomaly-detector', run: name, step: 'training', reason: 'deadline', message: 'deadline exceeded in training after 300 min' });
    expect(sink.events[1]?.source).toBe('/model-lifecycle/watchdog');

    clock.advance(60_000);
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(sink.events).toHaveLength(2);
  });

  test('a run Gating past its budget: the gate Job is deleted and the run failed with step gate', async () => {
    const run = await createRun('anomaly-detector', 'manual/gate', {
      phase: 'Gating', step: 'gate', startedAt: minutesAgo(200),
      steps: { training: { finished: minutesAgo(40) }, gate: { started: minutesAgo(30), job: 'x' } }, deadlines: { step: minutesAgo(100), run: minutesAhead(60) },
    });
    const name = run.metadata.name ?? '';
    await cluster.kube.create(Resources.job, { metadata: { name: `${name}-gate`, labels: { 'mlops.dev/run': name } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'step', image: 'x' }] } } } });
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(await cluster.kube.get(Resources.job, `${name}-gate`)).toBeUndefined();
    expect((await getRun(cluster.kube, name))?.status?.phase).toBe('Failed');
    expect(sink.events.map((e) => e.data)).toEqual([{ model: 'anomaly-detector', run: name, step: 'gate', reason: 'deadline', message: 'deadline exceeded in gate after 30 min' }]);
  });

  test('a Verifying run past its deadline yields exactly one deployment.failed (no-ready-pod) over several ticks; the run stays Verifying', async () => {
    const run = await createRun('anomaly-detector', 'manual/verify', {
      phase: 'Verifying', step: 'verify', startedAt: minutesAgo(300),
      steps: { promote: { started: minutesAgo(25), finished: minutesAgo(20) } },
      release: { promoted: 'ignored-below', replaced: 'anomaly-detector-prev000000' },
      deadlines: { step: minutesAgo(5), run: minutesAhead(60) },
    });
    const name = run.metadata.name ?? '';
    await updateRunStatus(cluster.kube, name, (s) => ({ ...s, release: { promoted: name, replaced: 'anomaly-detector-prev000000' } }));
    await acquireLock(cluster.kube, 'anomaly-detector', name, 36_000, new Date(minutesAgo(300)));
    for (let i = 0; i < 3; i++) {
      expect((await postEvent(served.url, tick())).status).toBe(204);
      clock.advance(60_000);
    }
    const failed = sink.events.filter((e) => e.type === EventTypes.deploymentFailed);
    expect(failed).toHaveLength(1);
    const event = failed[0]!;
    expect(event.id).toBe(`${name}.deployment.failed`);
    // The later ticks see a failed verification with no rollback started: the reconcile wakes restart-predictor
    // (in case the deployment.failed was lost), one event per tick.
    const pokes = sink.events.filter((e) => e.type === EventTypes.runReconcile);
    expect(pokes.map((e) => e.data)).toEqual([1, 2].map(() => ({ model: 'anomaly-detector', run: name, target: 'restart-predictor', reason: 'rollback not started' })));
    expect(new Set(pokes.map((e) => e.id)).size).toBe(2);
    expect(event.data).toEqual({ model: 'anomaly-detector', run: name, release: name, reason: 'no-ready-pod', message: 'no new predictor pod became verifiable: deadline exceeded in verify after 20 min' });
    const after = await getRun(cluster.kube, name);
    expect(after?.status?.phase).toBe('Verifying');
    expect(after?.status?.steps?.verify).toEqual({ finished: SUNDAY, outcome: 'Failed', message: 'no new predictor pod became verifiable: deadline exceeded in verify after 20 min' });
    expect((await cluster.kube.get<LeaseObject>(Resources.lease, 'model-lock-anomaly-detector'))?.spec?.holderIdentity).toBe(name); // rollback still to come
  });

  // issue 12, "A lost predictor-pod event leaves a good release unverified until the deadline rolls it back".
  test('bug: lost pod event — a Verifying run whose new pods are Ready gets verify-endpoint woken on the next tick, long before its deadline', async () => {
    const isvcs = { group: 'serving.kserve.io', version: 'v1beta1', resource: 'inferenceservices' };
    const pods = { group: '', version: 'v1', resource: 'pods' };
    for (const c of [isvcs, pods]) cluster.emulator.store.deleteCollection(c, { namespace: NAMESPACE });
    const run = await createRun('anomaly-detector', 'manual/lost-pod-event', {
      phase: 'Verifying', step: 'verify', startedAt: minutesAgo(30),
      steps: { promote: { started: minutesAgo(3), finished: minutesAgo(2) } },
      deadlines: { step: minutesAhead(13), run: minutesAhead(60) },
    });
    const name = run.metadata.name ?? '';
    await updateRunStatus(cluster.kube, name, (s) => ({ ...s, release: { promoted: name, replaced: null } }));
    cluster.emulator.store.create(isvcs, {
      apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'anomaly-detector', namespace: NAMESPACE },
      spec: { predictor: { annotations: { 'mlops.dev/model-release': name }, model: { modelFormat: { name: 'sklearn' } } } },
    });
    const pod = cluster.emulator.store.create(pods, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'anomaly-detector-predictor-abc-1', namespace: NAMESPACE, labels: { 'serving.kserve.io/inferenceservice': 'anomaly-detector' }, annotations: { 'mlops.dev/model-release': name } },
      spec: { containers: [{ name: 'kserve-container', image: 'x' }] },
    });
    // Ready for a minute: its Ready update was the event that got lost.
    cluster.emulator.store.updateStatus(pods, { ...pod, status: { phase: 'Running', podIP: '127.0.0.1', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: minutesAgo(1) }] } });
    expect((await postEvent(served.url, tick())).status).toBe(204);
    const pokes = sink.events.filter((e) => e.type === EventTypes.runReconcile);
    expect(pokes.map((e) => e.data)).toEqual([{ model: 'anomaly-detector', run: name, target: 'verify-endpoint', reason: '1 new pod(s) Ready' }]);
    expect(sink.events.filter((e) => e.type === EventTypes.deploymentFailed)).toEqual([]);
    for (const c of [isvcs, pods]) cluster.emulator.store.deleteCollection(c, { namespace: NAMESPACE });
  });

  // issue 12, "no lost notification": verify-endpoint replies deployment.verified after its Succeeded write.
  test('a verified run whose deployment.verified notify never recorded gets verify-endpoint woken to send it again; once recorded, no more', async () => {
    const run = await createRun('anomaly-detector', 'manual/lost-verified-notice', {
      phase: 'Succeeded', step: 'verify', startedAt: minutesAgo(30), finishedAt: minutesAgo(2),
      steps: { verify: { started: minutesAgo(4), finished: minutesAgo(2), outcome: 'verified', message: 'verified 2 predictions on 1 new pod(s): p' } },
    });
    const name = run.metadata.name ?? '';
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(sink.events.filter((e) => e.type === EventTypes.runReconcile).map((e) => e.data))
      .toEqual([{ model: 'anomaly-detector', run: name, target: 'verify-endpoint', reason: 'deployment.verified not recorded by notify' }]);
    sink.events.length = 0;
    await cluster.kube.mergePatch(Resources.modelRun, name, { metadata: { annotations: { 'mlops.dev/notified-deployment.verified': 'slack,email,event' } } });
    clock.set(new Date(clock.now().getTime() + 60_000).toISOString());
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(sink.events.filter((e) => e.type === EventTypes.runReconcile)).toEqual([]);
  });

  // issue 12, "The phase label written after a status write is never retried".
  test('bug: stale phase label — a mlops.dev/phase that lags status.phase is re-synced on the next tick', async () => {
    const run = await createRun('anomaly-detector', 'manual/stale-label', { phase: 'Rejected', message: 'gate rejected', startedAt: minutesAgo(30), finishedAt: minutesAgo(5) });
    const name = run.metadata.name ?? '';
    await cluster.kube.mergePatch(Resources.modelRun, name, { metadata: { labels: { 'mlops.dev/phase': 'Gating' } } });
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect((await getRun(cluster.kube, name))?.metadata.labels?.['mlops.dev/phase']).toBe('Rejected');
  });

  test('a broker outage while sending deployment.failed is retried: 503 now, the event on the next tick, still once', async () => {
    const run = await createRun('anomaly-detector', 'manual/verify-outage', {
      phase: 'Verifying', step: 'verify', startedAt: minutesAgo(300), steps: { promote: { finished: minutesAgo(20) } }, deadlines: { step: minutesAgo(5) },
    });
    const name = run.metadata.name ?? '';
    sink.failNext(1);
    expect((await postEvent(served.url, tick())).status).toBe(503);
    expect((await getRun(cluster.kube, name))?.status?.steps?.verify).toBeUndefined();
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(sink.events.map((e) => e.type)).toEqual([EventTypes.deploymentFailed]);
  });

  test('orphan leases are removed: holder gone, or holder already terminal (its queued request re-submitted); a fresh one is kept', async () => {
    await acquireLock(cluster.kube, 'anomaly-detector', 'anomaly-detector-gone000000', 3600, new Date(minutesAgo(10)));
    const done = await createRun('predictive-analytics', 'manual/done', { phase: 'Failed', startedAt: minutesAgo(100), finishedAt: minutesAgo(50) });
    const doneName = done.metadata.name ?? '';
    await acquireLock(cluster.kube, 'predictive-analytics', doneName, 3600, new Date(minutesAgo(100)));
    const lease = await cluster.kube.get<LeaseObject>(Resources.lease, 'model-lock-predictive-analytics');
    await enqueueOnLock(cluster.kube, lease!, { model: 'predictive-analytics', trigger: 'manual', provenance: { eventSource: '/cli', eventId: 'w-2' } });

    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(await cluster.kube.listAll(Resources.lease)).toEqual([]);
    expect(sink.events.map((e) => [e.type, e.id])).toEqual([[EventTypes.trainingRequested, `${doneName}.queued.training.requested`]]);

    // A lease taken a moment ago by a start-training that has not created its run yet is not an orphan.
    await acquireLock(cluster.kube, 'anomaly-detector', 'anomaly-detector-young00000', 3600, new Date(minutesAgo(0.5)));
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect((await cluster.kube.listAll<LeaseObject>(Resources.lease)).map((l) => l.spec?.holderIdentity)).toEqual(['anomaly-detector-young00000']);
  });

  test('an expired lease of a run in flight fails the run (lock-expired) and frees the lock', async () => {
    const run = await createRun('anomaly-detector', 'manual/expired', {
      phase: 'Training', startedAt: minutesAgo(90), steps: { training: { started: minutesAgo(90) } }, deadlines: { step: minutesAhead(150), run: minutesAhead(300) },
    });
    const name = run.metadata.name ?? '';
    await acquireLock(cluster.kube, 'anomaly-detector', name, 60, new Date(minutesAgo(90)));
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect((await getRun(cluster.kube, name))?.status?.phase).toBe('Failed');
    expect(await cluster.kube.get(Resources.lease, 'model-lock-anomaly-detector')).toBeUndefined();
    expect(sink.events.map((e) => e.data)).toEqual([{ model: 'anomaly-detector', run: name, step: 'training', reason: 'lock-expired', message: 'the model lock expired while in training (after 90 min)' }]);
  });

  test('a missed schedule fires exactly one catch-up over several ticks, mapped by start-training to the slot\'s own run', async () => {
    clock.set(MONDAY);
    cluster.emulator.store.deleteCollection({ group: '', version: 'v1', resource: 'configmaps' }, { namespace: NAMESPACE });
    sink.failNext(1); // the broker is down on the first tick: nothing is remembered, the next tick sends
    expect((await postEvent(served.url, tick())).status).toBe(503);
    for (let i = 0; i < 4; i++) {
      clock.advance(60_000);
      expect((await postEvent(served.url, tick({}))).status).toBe(204);
    }
    expect(sink.events).toHaveLength(1);
    const catchUp = sink.events[0]!;
    expect(catchUp.type).toBe(EventTypes.trainingRequested);
    expect(catchUp.id).toBe(`catchup/anomaly-detector/${SLOT}`);
    expect(catchUp.source).toBe('/model-lifecycle/watchdog');
    expect(catchUp.data).toEqual({ model: 'anomaly-detector', trigger: 'catchup', requestedBy: 'watchdog', provenance: { scheduleSlot: SLOT } });
    const memory = await cluster.kube.get<KubeObject & { data?: Record<string, string> }>(Resources.configMap, MEMORY_CONFIGMAP);
    expect(memory?.data).toEqual({ 'anomaly-detector': SLOT });

    // start-training turns the catch-up into the same ModelRun the slot's own tick would have made.
    const starter = await serveForTest(startTraining, { cluster, sinkUrl: sink.url, clock, catalog: CATALOG });
    try {
      const started = await postEvent(starter.url, catchUp);
      expect(started.event?.type).toBe(EventTypes.trainingStarted);
      const runName = runNameFor('anomaly-detector', scheduleKey('anomaly-detector', SLOT));
      expect(started.event?.data).toMatchObject({ run: runName, trigger: 'catchup' });
      const lateTick = new CloudEvent({ type: 'dev.knative.sources.ping', source: `/apis/v1/namespaces/${NAMESPACE}/pingsources/anomaly-detector-schedule`, id: 'late', time: '2026-11-22T02:00:00Z', datacontenttype: 'application/json', data: { model: 'anomaly-detector' } });
      expect((await postEvent(starter.url, lateTick)).event?.data).toMatchObject({ run: runName });
      expect(await cluster.kube.listAll(Resources.modelRun)).toHaveLength(1);
    } finally {
      await starter.close();
    }

    // With the memory lost, the slot's run existing still prevents a second catch-up.
    cluster.emulator.store.deleteCollection({ group: '', version: 'v1', resource: 'configmaps' }, { namespace: NAMESPACE });
    clock.advance(60_000);
    expect((await postEvent(served.url, tick())).status).toBe(204);
    expect(sink.events.filter((e) => e.type === EventTypes.trainingRequested)).toHaveLength(1);
  });

  test('prune keeps the newest 50 terminal runs and the served release\'s record', async () => {
    const catalog: Catalog = { models: CATALOG.models.filter((m) => m.name === 'predictive-analytics') };
    const quiet = await serveForTest(step, { cluster, sinkUrl: sink.url, clock, catalog });
    try {
      await createRun('predictive-analytics', 'manual/ok', { phase: 'Succeeded', startedAt: minutesAgo(600), finishedAt: minutesAgo(60), steps: { training: { finished: minutesAgo(120) } } });
      for (let i = 0; i < 51; i++) await createRun('predictive-analytics', `manual/f${i}`, { phase: 'Failed', startedAt: minutesAgo(30), finishedAt: minutesAgo(29) });
      expect(await cluster.kube.listAll(Resources.modelRun)).toHaveLength(52);
      expect((await postEvent(quiet.url, tick())).status).toBe(204);
      const left = await cluster.kube.listAll<ModelRun & KubeObject>(Resources.modelRun);
      expect(left).toHaveLength(51); // 50 newest terminal + the served release's record
      expect(left.some((r) => r.status?.phase === 'Succeeded')).toBe(true);
      expect(sink.events).toEqual([]);
    } finally {
      await quiet.close();
    }
  });

  test('events other than a ping are not the watchdog\'s: 204 and nothing done', async () => {
    await acquireLock(cluster.kube, 'anomaly-detector', 'anomaly-detector-gone000000', 3600, new Date(minutesAgo(10)));
    const other = new CloudEvent({ type: EventTypes.runFailed, source: '/x', id: 'o-1', datacontenttype: 'application/json', data: {} });
    expect((await postEvent(served.url, other)).status).toBe(204);
    expect(await cluster.kube.listAll(Resources.lease)).toHaveLength(1);
  });
});
