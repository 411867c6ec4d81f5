import { CloudEvent } from 'cloudevents';
import { EventTypes, MESSAGE_MAX } from '../../events/index.ts';
import { Resources, type ModelRun } from '../../runtime/resources.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import { NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step as startTraining } from '../start-training/index.ts';
import { step } from './index.ts';

const NVJ = { group: 'mlops.mlops.dev', version: 'v1alpha1', resource: 'notebookvalidationjobs' };

describe('track-training over HTTP against the emulator', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let start: ServedStep;
  let track: ServedStep;

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    start = await serveForTest(startTraining, { cluster, sinkUrl: sink.url });
    track = await serveForTest(step, { cluster, sinkUrl: sink.url });
  });
  afterAll(async () => { await track.close(); await start.close(); await sink.close(); await cluster.close(); });

  async function startRun(model: string, id: string): Promise<string> {
    const res = await postEvent(start.url, new CloudEvent({ type: EventTypes.trainingRequested, source: '/test', id, data: { model, trigger: 'manual' } }));
    expect(res.event?.type).toBe(EventTypes.trainingStarted);
    return (res.event?.data as { run: string }).run;
  }

  function setPhase(run: string, phase: string, message = ''): KubeObject {
    const current = cluster.emulator.store.read(NVJ, { name: run, namespace: NAMESPACE });
    return cluster.emulator.store.updateStatus(NVJ, { ...current, status: { phase, message, ...(phase === 'Succeeded' || phase === 'Failed' ? { completionTime: '2026-11-22T03:00:00Z' } : {}) } });
  }

  const update = (obj: KubeObject, id: string) => new CloudEvent({ type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id, mlopsroute: 'training', data: obj });

  test('phase flaps are silent; Succeeded is mapped once however many updates arrive', async () => {
    const run = await startRun('anomaly-detector', 'track-1');
    cluster.emulator.resetRequests();
    for (const [i, phase] of ['Initializing', 'Building', 'BuildComplete', 'ValidationRunning', 'Running', 'ValidationRunning', 'Running'].entries()) {
      const res = await postEvent(track.url, update(setPhase(run, phase), `u-${i}`));
      expect(res.status).toBe(204);
    }
    expect(cluster.emulator.requests).toHaveLength(0); // non-terminal updates cost no API call
    const done = setPhase(run, 'Succeeded', 'notebook executed');
    const first = await postEvent(track.url, update(done, 'u-done'));
    expect(first.event?.type).toBe(EventTypes.trainingSucceeded);
    expect(first.event?.data).toMatchObject({ model: 'anomaly-detector', run, profile: 'cpu', artifactPath: `.runs/${run}/anomaly-detector/model.pkl` });
    expect(first.event?.id).toBe(`${run}.training.succeeded`);
    // Redelivery before the gate started: the same event again (receivers de-duplicate on source+id).
    const again = await postEvent(track.url, update(done, 'u-done'));
    expect(again.event?.id).toBe(first.event?.id);
    expect(again.event?.data).toEqual(first.event?.data);
    const mr = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, run);
    expect(mr?.status).toMatchObject({ phase: 'Gating', step: 'gate', artifact: { path: `.runs/${run}/anomaly-detector/model.pkl` }, steps: { training: { outcome: 'Succeeded' } } });
    // Once the gate has started, further NVJ updates are silent.
    cluster.emulator.store.updateStatus({ group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' },
      { ...cluster.emulator.store.read({ group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' }, { name: run, namespace: NAMESPACE }), status: { ...mr?.status, steps: { ...mr?.status?.steps, gate: { started: '2026-11-22T03:00:05Z' } } } });
    expect((await postEvent(track.url, update(done, 'u-late'))).status).toBe(204);
  });

  test('Failed ends the run, records the operator message and frees the lock', async () => {
    const run = await startRun('predictive-analytics', 'track-2');
    const res = await postEvent(track.url, update(setPhase(run, 'Failed', 'Notebook execution failed: cell 7 raised ValueError'), 'f-1'));
    expect(res.event?.type).toBe(EventTypes.trainingFailed);
    expect(res.event?.data).toEqual({ model: 'predictive-analytics', run, profile: 'gpu', phase: 'Failed', message: 'Notebook execution failed: cell 7 raised ValueError' });
    const mr = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, run);
    expect(mr?.status).toMatchObject({ phase: 'Failed', message: 'training failed: Notebook execution failed: cell 7 raised ValueError', steps: { training: { outcome: 'Failed' } } });
    expect(mr?.metadata.labels?.['mlops.dev/phase']).toBe('Failed');
    expect(await cluster.kube.get(Resources.lease, 'model-lock-predictive-analytics')).toBeUndefined();
    // A new request for the model can start now.
    await startRun('predictive-analytics', 'track-3');
  });

  test('a GPU success goes to Copying; a succeeded NVJ whose logs were not collected is a success with a warning', async () => {
    cluster.emulator.store.deleteCollection({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases' }, { namespace: NAMESPACE });
    const run = await startRun('predictive-analytics', 'track-4');
    const res = await postEvent(track.url, update(setPhase(run, 'Succeeded', 'Validation completed; failed to collect logs from pod'), 's-1'));
    expect(res.event?.data).toMatchObject({ profile: 'gpu', warning: expect.stringContaining('could not collect logs') });
    const mr = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, run);
    expect(mr?.status?.phase).toBe('Copying');
    expect(mr?.status?.warnings).toHaveLength(1);
  });

  test('NVJs that are not ours, deletes and malformed events', async () => {
    const foreign = { apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob', metadata: { name: 'someone-elses', namespace: NAMESPACE }, status: { phase: 'Succeeded' } };
    expect((await postEvent(track.url, update(foreign as KubeObject, 'x-1'))).status).toBe(204);
    const del = new CloudEvent({ type: 'dev.knative.apiserver.resource.delete', source: 'https://kubernetes.default.svc', id: 'x-2', data: foreign });
    expect((await postEvent(track.url, del)).status).toBe(204);
    const bad = new CloudEvent({ type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id: 'x-3', data: { kind: 7 } });
    expect((await postEvent(track.url, bad)).status).toBe(400);
  });
  test('a 100 KB operator failure message still produces training.failed (clipped to the event schema), over HTTP', async () => {
    cluster.emulator.store.deleteCollection({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases' }, { namespace: NAMESPACE });
    const run = await startRun('anomaly-detector', 'track-huge');
    // A failed notebook's whole traceback, as the operator writes it into status.message.
    const traceback = `Traceback (most recent call last):\n${'  File "/tmp/nb.py", line 7, in <module>\n    model.fit(X)\n'.repeat(2000)}ValueError: Input contains NaN`;
    expect(traceback.length).toBeGreaterThan(100_000);
    const res = await postEvent(track.url, update(setPhase(run, 'Failed', traceback), 'huge-1'));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.trainingFailed);
    const message = (res.event?.data as { message: string }).message;
    expect(message).toHaveLength(MESSAGE_MAX);
    expect(message.startsWith('Traceback (most recent call last):')).toBe(true);
    expect(message.endsWith('…')).toBe(true);
    const mr = await cluster.kube.get<ModelRun & KubeObject>(Resources.modelRun, run);
    expect(mr?.status?.phase).toBe('Failed');
    expect(mr?.status?.message?.length).toBeLessThanOrEqual(MESSAGE_MAX);
    expect(mr?.status?.steps?.training?.message).toBe(message);
    // A redelivery answers with the same event.
    const again = await postEvent(track.url, update(setPhase(run, 'Failed', traceback), 'huge-2'));
    expect(again.event?.id).toBe(res.event?.id);
    expect(again.event?.data).toEqual(res.event?.data);
  });

  test('a run that recorded an unclipped message before the fix still gets its training.failed out', async () => {
    cluster.emulator.store.deleteCollection({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases' }, { namespace: NAMESPACE });
    const run = await startRun('anomaly-detector', 'track-legacy');
    const MR = { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' };
    const stored = cluster.emulator.store.read(MR, { name: run, namespace: NAMESPACE });
    cluster.emulator.store.updateStatus(MR, { ...stored, status: { ...(stored.status as Record<string, unknown>), phase: 'Failed', steps: { training: { finished: '2026-11-22T03:00:00Z', outcome: 'Failed', message: 'x'.repeat(100_000) } } } });
    const res = await postEvent(track.url, update(setPhase(run, 'Failed', 'x'.repeat(100_000)), 'legacy-1'));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.trainingFailed);
    expect((res.event?.data as { message: string }).message).toHaveLength(MESSAGE_MAX);
  });
});
