import { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import { finishRun, resubmitQueued } from '../../runtime/finish.ts';
import { parseQueued, type LeaseObject } from '../../runtime/lock.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { ManualClock, NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step } from './index.ts';

const PING_SOURCE = `/apis/v1/namespaces/${NAMESPACE}/pingsources/anomaly-detector-schedule`;

function tick(model: string, id = 'tick-1', time = '2026-11-22T02:00:03Z'): CloudEvent<unknown> {
  return new CloudEvent({ type: 'dev.knative.sources.ping', source: PING_SOURCE.replace('anomaly-detector', model), id, time, datacontenttype: 'application/json', data: { model } });
}

function manual(model: string, id: string, extra: Record<string, unknown> = {}): CloudEvent<unknown> {
  return new CloudEvent({ type: EventTypes.trainingRequested, source: '/mlops-cli', id, datacontenttype: 'application/json', data: { model, trigger: 'manual', requestedBy: 'tester', ...extra } });
}

describe('start-training over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let served: ServedStep;
  const clock = new ManualClock('2026-11-22T02:00:05.000Z');

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    served = await serveForTest(step, { cluster, sinkUrl: sink.url, clock });
  });
  afterAll(async () => { await served.close(); await sink.close(); await cluster.close(); });
  beforeEach(() => {
    for (const r of ['modelruns', 'notebookvalidationjobs', 'leases']) {
      const group = r === 'leases' ? 'coordination.k8s.io' : r === 'modelruns' ? 'lifecycle.mlops.dev' : 'mlops.mlops.dev';
      cluster.emulator.store.deleteCollection({ group, version: r === 'leases' ? 'v1' : 'v1alpha1', resource: r }, { namespace: NAMESPACE });
    }
  });

  const list = async <T extends KubeObject>(res: (typeof Resources)[keyof typeof Resources]): Promise<T[]> => cluster.kube.listAll<T>(res);

  test('a CPU tick creates one ModelRun and one NVJ matching the catalog, takes the lock and replies training.started', async () => {
    const res = await postEvent(served.url, tick('anomaly-detector'));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.trainingStarted);
    const data = res.event?.data as { run: string; model: string; trigger: string; profile: string; notebookValidationJob: string; deadline: string };
    expect(data).toMatchObject({ model: 'anomaly-detector', trigger: 'schedule', profile: 'cpu' });
    expect(data.run).toMatch(/^anomaly-detector-[0-9a-f]{10}$/);
    expect(data.deadline).toBe('2026-11-22T06:00:05.000Z'); // 240 min training deadline

    const runs = await list<ModelRun & KubeObject>(Resources.modelRun);
    expect(runs).toHaveLength(1);
    const run = runs[0] as ModelRun;
    expect(run.spec).toMatchObject({ model: 'anomaly-detector', trigger: 'schedule', profile: 'cpu', idempotencyKey: 'schedule/anomaly-detector/2026-11-22T02:00:00.000Z',
      provenance: { scheduleSlot: '2026-11-22T02:00:00.000Z', pingSource: PING_SOURCE } });
    expect(run.status).toMatchObject({ phase: 'Training', step: 'training', deadlines: { step: '2026-11-22T06:00:05.000Z' } });
    expect(run.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/phase': 'Training' });

    const nvjs = await list<KubeObject & { spec: Record<string, unknown> }>(Resources.notebookValidationJob);
    expect(nvjs).toHaveLength(1);
    const nvj = nvjs[0]!;
    expect(nvj.metadata?.name).toBe(data.run);
    expect(nvj.metadata?.labels).toEqual({ 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/run': data.run, 'mlops.dev/step': 'training' });
    expect(nvj.metadata?.ownerReferences).toEqual([{ apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun', name: data.run, uid: run.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    expect(nvj.metadata?.annotations?.['mlops.dev/on-success-trigger']).toBeUndefined();
    expect(nvj.spec).toEqual({
      notebook: { git: { url: 'https://github.com/tosin2013/openshift-aiops-platform.git', ref: 'main' }, path: 'notebooks/02-anomaly-detection/01-isolation-forest-implementation.ipynb' },
      podConfig: {
        containerImage: 'quay.io/jupyter/scipy-notebook:2024-10-07',
        serviceAccountName: 'model-training',
        env: [
          // Scheduled runs train on Prometheus data (catalog dataSource.schedule), as the platform's CronJobs did.
          { name: 'DATA_SOURCE', value: 'prometheus' }, { name: 'TRAINING_HOURS', value: '168' }, { name: 'TRAINING_DAYS', value: '7' },
          { name: 'PROMETHEUS_URL', value: 'http://prometheus-k8s.openshift-monitoring.svc:9090' }, { name: 'MODEL_NAME', value: 'anomaly-detector' },
          { name: 'MLOPS_RUN', value: data.run },
        ],
        envFrom: [{ secretRef: { name: 'model-storage-config' } }],
        resources: { requests: { cpu: '1', memory: '2Gi' }, limits: { cpu: '2', memory: '4Gi' } },
        volumes: [{ name: 'model-storage', persistentVolumeClaim: { claimName: 'model-storage-pvc' } }],
        volumeMounts: [{ name: 'model-storage', mountPath: '/mnt/models', subPath: `.runs/${data.run}` }],
      },
      timeout: '240m',
    });
    const lease = await cluster.kube.get<KubeObject & { spec: { holderIdentity: string; leaseDurationSeconds: number } }>(Resources.lease, 'model-lock-anomaly-detector');
    expect(lease?.spec.holderIdentity).toBe(data.run);
    expect(lease?.spec.leaseDurationSeconds).toBe((240 + 30 + 15 + 10 + 15 + 15) * 60);
  });

  test('a GPU tick asks for the GPU, tolerates the taint, selects GPU nodes and uses the GPU PVC', async () => {
    const res = await postEvent(served.url, tick('predictive-analytics', 'tick-gpu', '2026-11-22T03:00:00Z'));
    expect(res.status).toBe(200);
    const run = (res.event?.data as { run: string }).run;
    const nvj = await cluster.kube.get<KubeObject & { spec: { podConfig: Record<string, unknown> } }>(Resources.notebookValidationJob, run);
    expect(nvj?.spec.podConfig).toMatchObject({
      resources: { requests: { cpu: '2', memory: '8Gi', 'nvidia.com/gpu': '1' }, limits: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' } },
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      nodeSelector: { 'nvidia.com/gpu.present': 'true' },
      volumes: [{ name: 'model-storage', persistentVolumeClaim: { claimName: 'model-storage-gpu-pvc' } }],
      volumeMounts: [{ name: 'model-storage', mountPath: '/mnt/models', subPath: `.runs/${run}` }],
      env: expect.arrayContaining([{ name: 'TRAINING_HOURS', value: '720' }, { name: 'TRAINING_DAYS', value: '30' }]),
    });
    expect(res.event?.data).toMatchObject({ profile: 'gpu' });
  });

  test('the same event delivered three times yields one run, one NVJ and the same reply id', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const res = await postEvent(served.url, tick('anomaly-detector', `tick-redelivered-${i}`)); // new CE id, same slot
      expect(res.status).toBe(200);
      ids.add(res.event?.id ?? '');
    }
    for (let i = 0; i < 2; i++) await postEvent(served.url, manual('anomaly-detector', 'same-manual-id'));
    expect(ids.size).toBe(1);
    expect(await list(Resources.notebookValidationJob)).toHaveLength(1);
    expect(await list(Resources.modelRun)).toHaveLength(1);
  });

  test('50 concurrent requests for one model yield exactly one NVJ and 49 explicit skips naming the holder', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => postEvent(served.url, manual('anomaly-detector', `concurrent-${i}`))));
    expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    const started = results.filter((r) => r.event?.type === EventTypes.trainingStarted);
    const skipped = results.filter((r) => r.event?.type === EventTypes.trainingSkipped);
    expect(started).toHaveLength(1);
    expect(skipped).toHaveLength(49);
    const holder = (started[0]?.event?.data as { run: string }).run;
    for (const s of skipped) expect(s.event?.data).toMatchObject({ reason: 'already-running', holder });
    expect(await list(Resources.notebookValidationJob)).toHaveLength(1);
  });

  test('queue-latest parks the newest waiting request on the lock and re-submits it when the run ends', async () => {
    const catalog = (await import('../../runtime/catalog.ts')).loadCatalog('config/models.yaml');
    const queued = { ...catalog, models: catalog.models.map((m) => ({ ...m, concurrency: 'queue-latest' as const })) };
    const queueing = await serveForTest(step, { cluster, sinkUrl: sink.url, clock, catalog: queued });
    try {
      const first = await postEvent(queueing.url, manual('anomaly-detector', 'q-1'));
      const holder = (first.event?.data as { run: string }).run;
      const second = await postEvent(queueing.url, manual('anomaly-detector', 'q-2', { trainingHours: 24 }));
      const third = await postEvent(queueing.url, manual('anomaly-detector', 'q-3', { trainingHours: 48 }));
      expect(second.event?.data).toMatchObject({ reason: 'queued', holder });
      expect(third.event?.data).toMatchObject({ reason: 'queued', holder });
      sink.events.length = 0;
      await finishRun(queueing.deps, holder, { from: 'Training', phase: 'Failed', message: 'test ends the run', step: 'start-training' });
      expect(await cluster.kube.get(Resources.lease, 'model-lock-anomaly-detector')).toBeUndefined();
      expect(sink.events).toHaveLength(1);
      const resubmitted = sink.events[0]!;
      expect(resubmitted.type).toBe(EventTypes.trainingRequested);
      expect(resubmitted.data).toMatchObject({ model: 'anomaly-detector', trainingHours: 48, provenance: { queuedFrom: holder, eventId: 'q-3' } });
      // The re-submitted request starts a run; delivering it twice still starts one.
      const a = await postEvent(queueing.url, resubmitted);
      const b = await postEvent(queueing.url, resubmitted);
      expect(a.event?.type).toBe(EventTypes.trainingStarted);
      expect(b.event?.id).toBe(a.event?.id);
      expect(await list(Resources.notebookValidationJob)).toHaveLength(2);
    } finally {
      await queueing.close();
    }
  });

  test('a parked request survives a failed send and a finisher stopped between the send and the Lease delete', async () => {
    const catalog = (await import('../../runtime/catalog.ts')).loadCatalog('config/models.yaml');
    const queued = { ...catalog, models: catalog.models.map((m) => ({ ...m, concurrency: 'queue-latest' as const })) };
    const queueing = await serveForTest(step, { cluster, sinkUrl: sink.url, clock, catalog: queued });
    try {
      const first = await postEvent(queueing.url, manual('predictive-analytics', 'lost-1'));
      const holder = (first.event?.data as { run: string }).run;
      expect((await postEvent(queueing.url, manual('predictive-analytics', 'lost-2', { trainingHours: 12 }))).event?.data).toMatchObject({ reason: 'queued', holder });
      sink.events.length = 0;
      // The broker is down when the run ends: the send fails, and the Lease (the request's only copy) stays.
      sink.failNext(1, 503);
      await expect(finishRun(queueing.deps, holder, { from: 'Training', phase: 'Failed', message: 'ends', step: 'start-training' })).rejects.toThrow();
      const kept = await cluster.kube.get<LeaseObject>(Resources.lease, 'model-lock-predictive-analytics');
      expect(kept?.spec?.holderIdentity).toBe(holder);
      expect(parseQueued(kept!)).toMatchObject({ trainingHours: 12 });
      // A finisher that sends and then stops before deleting the Lease: simulate with a send that succeeds and a
      // run that is already terminal (the redelivery of the ending finds it so). The re-submitted request arrives
      // while the Lease still names the finished holder: start-training takes the lock over and starts it.
      await resubmitQueued(queueing.deps, parseQueued(kept!)!, holder, { step: 'start-training' });
      const resubmitted = sink.events.at(-1)!;
      const started = await postEvent(queueing.url, resubmitted);
      expect(started.event?.type).toBe(EventTypes.trainingStarted);
      const newRun = (started.event?.data as { run: string }).run;
      const lease = await cluster.kube.get<LeaseObject>(Resources.lease, 'model-lock-predictive-analytics');
      expect(lease?.spec?.holderIdentity).toBe(newRun);
      expect(parseQueued(lease!)).toBeUndefined(); // the parked request was this one
      // The finisher's redelivery finds the Lease taken over: it neither sends again nor deletes the new run's lock.
      await finishRun(queueing.deps, holder, { from: 'Training', phase: 'Failed', message: 'ends', step: 'start-training' });
      expect((await cluster.kube.get<LeaseObject>(Resources.lease, 'model-lock-predictive-analytics'))?.spec?.holderIdentity).toBe(newRun);
      expect(new Set(sink.events.filter((e) => e.type === EventTypes.trainingRequested).map((e) => e.id)).size).toBe(1);
    } finally {
      await queueing.close();
    }
  });

  test('drift inside the cooldown after a successful deploy is skipped; after it, it starts', async () => {
    const finished = new Date(clock.now().getTime() - 60 * 60_000).toISOString(); // 1 h ago; cooldown 6 h
    cluster.emulator.store.create({ group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' }, {
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
      metadata: { name: 'anomaly-detector-old', namespace: NAMESPACE, labels: { 'mlops.dev/model': 'anomaly-detector', 'mlops.dev/phase': 'Succeeded' } },
      spec: { model: 'anomaly-detector', trigger: 'schedule', idempotencyKey: 'old', profile: 'cpu' },
    });
    const stored = cluster.emulator.store.read({ group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' }, { name: 'anomaly-detector-old', namespace: NAMESPACE });
    cluster.emulator.store.updateStatus({ group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' }, { ...stored, status: { phase: 'Succeeded', finishedAt: finished } });
    const drift = (id: string) => buildEvent(EventTypes.trainingRequested, { step: 'drift-intake', id, data: { model: 'anomaly-detector', trigger: 'drift', provenance: { alertFingerprint: `fp-${id}`, startsAt: '2026-11-22T01:00:00Z' } } });
    const inCooldown = await postEvent(served.url, drift('a'));
    expect(inCooldown.event?.type).toBe(EventTypes.trainingSkipped);
    expect(inCooldown.event?.data).toMatchObject({ reason: 'cooldown' });
    expect(await list(Resources.notebookValidationJob)).toHaveLength(0);
    clock.advance(6 * 60 * 60_000);
    const after = await postEvent(served.url, drift('b'));
    clock.advance(-6 * 60 * 60_000);
    expect(after.event?.type).toBe(EventTypes.trainingStarted);
    expect(after.event?.data).toMatchObject({ trigger: 'drift' });
  });

  test('a manual request keeps the catalog default data source; a request may still name its own', async () => {
    const plain = await postEvent(served.url, manual('anomaly-detector', 'ds-1'));
    const run = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, (plain.event?.data as { run: string }).run);
    expect(run?.spec.training).toMatchObject({ dataSource: 'synthetic', trainingHours: 168, gitRef: 'main' });
    await finishRun(served.deps, run?.metadata.name ?? '', { from: 'Training', phase: 'Failed', message: 'test ends the run', step: 'start-training' });
    const named = await postEvent(served.url, manual('anomaly-detector', 'ds-2', { dataSource: 'hybrid' }));
    const run2 = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, (named.event?.data as { run: string }).run);
    expect(run2?.spec.training).toMatchObject({ dataSource: 'hybrid' });
  });

  test('a Tekton pipelinerun.successful labelled mlops.dev/retrain-model starts training keyed by the PipelineRun uid', async () => {
    const pr = (labels: Record<string, string>) => new CloudEvent({
      type: 'dev.tekton.event.pipelinerun.successful.v1', source: '/apis///namespaces/mlops//prep-run-1', id: 'tekton-1', datacontenttype: 'application/json',
      // As Tekton sends it: no apiVersion/kind in the data (docs/upstream-events.md).
      data: { pipelineRun: { metadata: { name: 'prep-run-1', namespace: NAMESPACE, uid: 'uid-prep-1', labels }, status: { conditions: [{ type: 'Succeeded', status: 'True' }] } } },
    });
    const unlabelled = await postEvent(served.url, pr({}));
    expect(unlabelled.status).toBe(204);
    const labelled = await postEvent(served.url, pr({ 'mlops.dev/retrain-model': 'anomaly-detector' }));
    expect(labelled.event?.type).toBe(EventTypes.trainingStarted);
    const run = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, (labelled.event?.data as { run: string }).run);
    expect(run?.spec).toMatchObject({ trigger: 'pipeline', idempotencyKey: 'pipeline/uid-prep-1', provenance: { pipelineRun: 'prep-run-1', pipelineRunUid: 'uid-prep-1' } });
  });

  test('a paused model answers every trigger with training.skipped (reason paused, who, why), a forced CLI request trains, and resume lets triggers through', async () => {
    const controls = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'model-controls-anomaly-detector', labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': 'anomaly-detector' } },
      data: { paused: 'true', pausedBy: 'alice@example.com', pausedAt: '2026-11-22T01:00:00Z', reason: 'INC-42 bad upstream data' } };
    await cluster.kube.create(Resources.configMap, controls);
    try {
      const pipeline = new CloudEvent({
        type: 'dev.tekton.event.pipelinerun.successful.v1', source: '/apis///namespaces/mlops//prep-paused', id: 'tekton-paused', datacontenttype: 'application/json',
        data: { pipelineRun: { metadata: { name: 'prep-paused', namespace: NAMESPACE, uid: 'uid-paused', labels: { 'mlops.dev/retrain-model': 'anomaly-detector' } }, status: { conditions: [{ type: 'Succeeded', status: 'True' }] } } },
      });
      const triggers: Array<[string, CloudEvent<unknown>]> = [
        ['schedule', tick('anomaly-detector', 'paused-tick')],
        ['drift', buildEvent(EventTypes.trainingRequested, { step: 'drift-intake', id: 'paused-drift', data: { model: 'anomaly-detector', trigger: 'drift', provenance: { alertFingerprint: 'f1', startsAt: '2026-11-22T01:59:00Z' } } })],
        ['git', buildEvent(EventTypes.trainingRequested, { step: 'git-intake', id: 'paused-git', data: { model: 'anomaly-detector', trigger: 'git', provenance: { deliveryId: 'd-1' } } })],
        ['pipeline', pipeline],
        ['catchup', buildEvent(EventTypes.trainingRequested, { step: 'watchdog', id: 'paused-catchup', data: { model: 'anomaly-detector', trigger: 'catchup', provenance: { scheduleSlot: '2026-11-15T02:00:00.000Z' } } })],
        ['manual', manual('anomaly-detector', 'paused-manual')],
        // force from anyone but the CLI is not a person's decision: still skipped.
        ['manual', buildEvent(EventTypes.trainingRequested, { step: 'git-intake', id: 'paused-forged-force', data: { model: 'anomaly-detector', trigger: 'manual', force: true } })],
      ];
      for (const [trigger, event] of triggers) {
        const res = await postEvent(served.url, event);
        expect(res.status).toBe(200);
        expect(res.event?.type).toBe(EventTypes.trainingSkipped);
        expect(res.event?.data).toMatchObject({ model: 'anomaly-detector', reason: 'paused', pausedBy: 'alice@example.com', pausedReason: 'INC-42 bad upstream data' });
        expect((res.event?.data as { message: string }).message).toContain(`paused by alice@example.com at 2026-11-22T01:00:00Z: INC-42 bad upstream data; ${trigger} request not started`);
      }
      expect(await list(Resources.modelRun)).toHaveLength(0);
      expect(await list(Resources.lease)).toHaveLength(0);

      // `mlops train --force` (a manual request from the CLI carrying force) trains the paused model.
      const forced = await postEvent(served.url, buildEvent(EventTypes.trainingRequested, { step: 'mlops-cli', id: 'paused-force', data: { model: 'anomaly-detector', trigger: 'manual', requestedBy: 'alice', force: true } }));
      expect(forced.event?.type).toBe(EventTypes.trainingStarted);
      const forcedRun = (forced.event?.data as { run: string }).run;
      await finishRun(served.deps, forcedRun, { from: 'Training', phase: 'Failed', message: 'test ends the run', step: 'start-training' });

      // Resume (what `mlops resume` writes): the next tick starts a run.
      await cluster.kube.mergePatch(Resources.configMap, 'model-controls-anomaly-detector', { data: { paused: 'false', pausedBy: null, pausedAt: null, reason: null } });
      const resumed = await postEvent(served.url, tick('anomaly-detector', 'resumed-tick', '2026-11-29T02:00:03Z'));
      expect(resumed.event?.type).toBe(EventTypes.trainingStarted);
    } finally {
      await cluster.kube.delete(Resources.configMap, 'model-controls-anomaly-detector');
    }
  });

  test('a malformed controls ConfigMap counts as paused and says why', async () => {
    await cluster.kube.create(Resources.configMap, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'model-controls-anomaly-detector' }, data: { paused: 'yes please' } });
    try {
      const res = await postEvent(served.url, tick('anomaly-detector', 'malformed-tick'));
      expect(res.event?.data).toMatchObject({ reason: 'paused', pausedBy: 'unknown' });
      expect((res.event?.data as { message: string }).message).toMatch(/controls ConfigMap is malformed \(paused: /);
      expect(await list(Resources.modelRun)).toHaveLength(0);
    } finally {
      await cluster.kube.delete(Resources.configMap, 'model-controls-anomaly-detector');
    }
  });

  test.each([
    ['unknown model', manual('no-such-model', 'bad-1'), 422, /unknown model "no-such-model"/],
    ['git ref with ..', manual('anomaly-detector', 'bad-2', { gitRef: 'main..evil' }), 400, /gitRef/],
    ['git ref option injection', manual('anomaly-detector', 'bad-3', { gitRef: '--upload-pack=x' }), 400, /gitRef/],
    ['notebook path traversal', manual('anomaly-detector', 'bad-4', { notebookPath: '../../etc/passwd.ipynb' }), 400, /notebookPath/],
    ['notebook not ipynb', manual('anomaly-detector', 'bad-5', { notebookPath: 'nb/train.py' }), 400, /notebookPath/],
    ['hours zero', manual('anomaly-detector', 'bad-6', { trainingHours: 0 }), 400, /trainingHours/],
    ['hours too large', manual('anomaly-detector', 'bad-7', { trainingHours: 100000 }), 400, /trainingHours/],
    ['model not DNS-1123', manual('Anomaly_Detector', 'bad-8'), 400, /model/],
    ['unknown trigger', manual('anomaly-detector', 'bad-9', { trigger: 'cron' }), 400, /trigger/],
    ['unknown field', manual('anomaly-detector', 'bad-10', { command: 'rm -rf /' }), 400, /command|unrecognized/i],
    ['ping for an unknown model', tick('ghost', 'bad-11'), 422, /unknown model/],
    ['gitRef override from the CLI', manual('anomaly-detector', 'bad-13', { gitRef: 'feature' }), 422, /^refused by rule overrides\.gitRef: sender "\/mlops-cli" may not set gitRef/],
    ['notebookPath override from a forged git-intake source', buildEvent(EventTypes.trainingRequested, { step: 'git-intake', id: 'bad-14', data: { model: 'anomaly-detector', trigger: 'git', notebookPath: 'nb/evil.ipynb' } }), 422, /^refused by rule overrides\.notebookPath: sender "git-intake"/],
    ['git-intake asking for an unwatched branch', buildEvent(EventTypes.trainingRequested, { step: 'git-intake', id: 'bad-15', data: { model: 'anomaly-detector', trigger: 'git', gitRef: 'evil' } }), 422, /^refused by rule overrides\.gitRef\.watched-branch/],
    ['a "queued" request whose first sender may not set gitRef', buildEvent(EventTypes.trainingRequested, { step: 'watchdog', id: 'bad-16', data: { model: 'anomaly-detector', trigger: 'manual', gitRef: 'evil', provenance: { queuedFrom: 'anomaly-detector-0000000000', eventSource: '/model-lifecycle/mlops-cli', eventId: 'x' } } }), 422, /^refused by rule overrides\.gitRef: sender "mlops-cli"/],
    ['ping with an injected model name', new CloudEvent({ type: 'dev.knative.sources.ping', source: PING_SOURCE, id: 'bad-12', data: { model: 'x;rm -rf /' } }), 400, /model/],
  ])('%s → refused with a reason, nothing created', async (_name, event, status, reason) => {
    const res = await postEvent(served.url, event);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body).error).toMatch(reason);
    expect(await list(Resources.modelRun)).toHaveLength(0);
    expect(await list(Resources.notebookValidationJob)).toHaveLength(0);
    expect(await list(Resources.lease)).toHaveLength(0);
  });

  test('a body that is not a CloudEvent is a 400', async () => {
    const res = await fetch(served.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"hello":1}' });
    expect(res.status).toBe(400);
  });
});
