import { createServer, type Server } from 'node:http';
import { CloudEvent } from 'cloudevents';
import { EventTypes, buildEvent } from '../../events/index.ts';
import { loadCatalog } from '../../runtime/catalog.ts';
import type { KubeObject } from '../../runtime/kube.ts';
import type { ModelRun, ModelRunStatus } from '../../runtime/resources.ts';
import { ManualClock, NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from '../../test/kit.ts';
import { step } from './index.ts';

const GVR = {
  modelruns: { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' },
  pods: { group: '', version: 'v1', resource: 'pods' },
  leases: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' },
} as const;

interface StandIn {
  port: number;
  requests: Array<{ path: string; body: unknown }>;
  respond: (path: string, body: unknown) => { status: number; body: unknown };
  close(): Promise<void>;
}

/** A predictor pod's model server: records what it was asked and answers as the test says. */
async function startStandIn(): Promise<StandIn> {
  const standIn: StandIn = {
    port: 0, requests: [], respond: () => ({ status: 500, body: 'not scripted' }),
    close: async () => {},
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') as unknown;
      standIn.requests.push({ path: req.url ?? '', body });
      const answer = standIn.respond(req.url ?? '', body);
      const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status, { 'content-type': typeof answer.body === 'string' ? 'text/plain' : 'application/json' }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  standIn.port = (server.address() as { port: number }).port;
  standIn.close = () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); });
  return standIn;
}

const AD_ROWS = [0, 1, 2].map((r) => Array.from({ length: 45 }, (_, i) => Math.round((r * 45 + i) * 0.37 * 1000) / 1000));
const AD_EXPECTED = [1, -1, 1];
const PA_ROWS = [[0.4, 0.6, 0.3, 120, 80], [0.9, 0.8, 0.7, 900, 500]];
const PA_EXPECTED = [[0.41, 0.61, 0.31, 121.5, 80.2], [0.91, 0.79, 0.72, 905.25, 499.5]];

describe('verify-endpoint over HTTP against the emulator and stand-in predictors', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  let served: ServedStep;
  let servedV2: ServedStep;
  let v1: StandIn;
  let v2: StandIn;
  const clock = new ManualClock('2026-11-22T10:10:00.000Z');
  let seq = 0;
  let RUN = '';
  let MODEL = 'anomaly-detector';

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    [v1, v2] = await Promise.all([startStandIn(), startStandIn()]);
    served = await serveForTest(step, { cluster, sinkUrl: sink.url, clock });
    const catalog = loadCatalog('config/models.yaml');
    const v2Catalog = { ...catalog, models: catalog.models.map((m) => (m.name === 'predictive-analytics' ? { ...m, protocol: 'v2' as const } : m)) };
    servedV2 = await serveForTest(step, { cluster, sinkUrl: sink.url, clock, catalog: v2Catalog });
  });
  afterAll(async () => { await served.close(); await servedV2.close(); await v1.close(); await v2.close(); await sink.close(); await cluster.close(); });
  beforeEach(() => {
    for (const gvr of Object.values(GVR)) cluster.emulator.store.deleteCollection(gvr, { namespace: NAMESPACE });
    MODEL = 'anomaly-detector';
    clock.set('2026-11-22T10:10:00.000Z');
    RUN = `${MODEL}-0000000${(seq++).toString(16).padStart(3, '0')}`;
    v1.requests.length = 0;
    v2.requests.length = 0;
    v1.respond = () => ({ status: 500, body: 'not scripted' });
    v2.respond = () => ({ status: 500, body: 'not scripted' });
  });

  const store = () => cluster.emulator.store;

  function useModel(model: string): void {
    MODEL = model;
    RUN = `${model}-0000000${(seq++).toString(16).padStart(3, '0')}`;
  }

  function createRun(status: ModelRunStatus): void {
    const stored = store().create(GVR.modelruns, {
      apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
      metadata: { name: RUN, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': RUN } },
      spec: { model: MODEL, trigger: 'schedule', idempotencyKey: `k-${RUN}`, profile: MODEL === 'anomaly-detector' ? 'cpu' : 'gpu' },
    });
    store().updateStatus(GVR.modelruns, { ...stored, status });
    store().create(GVR.leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: `model-lock-${MODEL}`, namespace: NAMESPACE }, spec: { holderIdentity: RUN, leaseDurationSeconds: 3600 } });
  }

  function verifyingRun(rows = AD_ROWS, expected: unknown[] = AD_EXPECTED): void {
    createRun({
      phase: 'Verifying', step: 'verify', startedAt: '2026-11-22T09:00:00.000Z',
      release: { promoted: RUN, replaced: `${MODEL}-00000000p0` },
      steps: { promote: { started: '2026-11-22T10:00:00.000Z', finished: '2026-11-22T10:02:00.000Z', outcome: 'promoted', job: `${RUN}-promote` } },
      probe: { rows, expected },
      deadlines: { step: '2026-11-22T10:17:00.000Z' },
    });
  }

  /** A predictor pod as KServe would start it: labelled by ISVC, the release annotation copied from the predictor. */
  function createPod(name: string, release: string | undefined, ready: boolean, port: number, replace = false): KubeObject {
    if (replace) store().delete(GVR.pods, { name, namespace: NAMESPACE });
    const pod = store().create(GVR.pods, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        name, namespace: NAMESPACE,
        labels: { 'serving.kserve.io/inferenceservice': MODEL, component: 'predictor' },
        ...(release ? { annotations: { 'mlops.dev/model-release': release } } : {}),
      },
      spec: { containers: [{ name: 'kserve-container', image: 'kserve/sklearnserver', ports: [{ containerPort: port, name: 'http1', protocol: 'TCP' }] }] },
    });
    return store().updateStatus(GVR.pods, {
      ...pod,
      status: {
        phase: 'Running', podIP: '127.0.0.1',
        conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: '2026-11-22T10:05:00Z' }],
        containerStatuses: [{ name: 'kserve-container', ready, restartCount: 0, image: 'kserve/sklearnserver', state: { running: { startedAt: '2026-11-22T10:04:00Z' } } }],
      },
    });
  }

  function restarted(): CloudEvent<unknown> {
    return buildEvent(EventTypes.predictorRestarted, {
      step: 'restart-predictor',
      data: { model: MODEL, run: RUN, release: RUN, previousRelease: `${MODEL}-00000000p0`, inferenceService: MODEL, restartedAt: '2026-11-22T10:02:00.000Z' },
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
  }

  let updateSeq = 0;
  const podUpdate = (pod: KubeObject): CloudEvent<unknown> => new CloudEvent({
    type: 'dev.knative.apiserver.resource.update', source: 'https://kubernetes.default.svc', id: `pod-upd-${updateSeq++}`,
    subject: `/api/v1/namespaces/${NAMESPACE}/pods/${pod.metadata?.name}`, datacontenttype: 'application/json', mlopsroute: 'predictor', data: pod,
  });

  const podEvent = (pod: KubeObject, verb: 'add' | 'update' | 'delete'): CloudEvent<unknown> => new CloudEvent({
    type: `dev.knative.apiserver.resource.${verb}`, source: 'https://kubernetes.default.svc', id: `pod-${verb}-${updateSeq++}`,
    subject: `/api/v1/namespaces/${NAMESPACE}/pods/${pod.metadata?.name}`, datacontenttype: 'application/json', mlopsroute: 'predictor', data: pod,
  });

  const getRun = async (): Promise<ModelRun> => (await cluster.kube.get<ModelRun & KubeObject>({ apiVersion: 'lifecycle.mlops.dev/v1alpha1', group: 'lifecycle.mlops.dev', version: 'v1alpha1', kind: 'ModelRun', plural: 'modelruns', namespaced: true }, RUN))!;
  const lease = () => store().get(GVR.leases, { name: `model-lock-${MODEL}`, namespace: NAMESPACE });

  test('correct answers from the new pods → deployment.verified, run Succeeded, lock freed; redelivery changes nothing', async () => {
    verifyingRun();
    createPod(`${MODEL}-predictor-new-b`, RUN, true, v1.port);
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    createPod(`${MODEL}-predictor-old-a`, `${MODEL}-00000000p0`, false, v1.port);
    v1.respond = () => ({ status: 200, body: { predictions: AD_EXPECTED } });

    const res = await postEvent(served.url, restarted());
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.deploymentVerified);
    expect(res.event?.id).toBe(`${RUN}.deployment.verified`);
    expect((res.event as unknown as { traceparent?: string }).traceparent).toBe('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    expect(res.event?.data).toEqual({ model: MODEL, run: RUN, release: RUN, verifiedAt: '2026-11-22T10:10:00.000Z', pods: [`${MODEL}-predictor-new-a`, `${MODEL}-predictor-new-b`], matched: 6 });
    expect(v1.requests).toEqual([
      { path: '/v1/models/anomaly-detector:predict', body: { instances: AD_ROWS } },
      { path: '/v1/models/anomaly-detector:predict', body: { instances: AD_ROWS } },
    ]);
    const run = await getRun();
    expect(run.status).toMatchObject({
      phase: 'Succeeded', finishedAt: '2026-11-22T10:10:00.000Z',
      steps: { verify: { started: '2026-11-22T10:02:00.000Z', finished: '2026-11-22T10:10:00.000Z', outcome: 'verified' } },
    });
    expect(run.metadata.labels?.['mlops.dev/phase']).toBe('Succeeded');
    expect(lease()).toBeUndefined();

    const version = run.metadata.resourceVersion;
    clock.advance(60_000);
    const again = await postEvent(served.url, restarted());
    expect(again.event?.id).toBe(res.event?.id);
    expect(again.event?.data).toEqual(res.event?.data);
    const pod = store().get(GVR.pods, { name: `${MODEL}-predictor-new-a`, namespace: NAMESPACE })!;
    expect((await postEvent(served.url, podUpdate(pod))).status).toBe(204);
    expect(v1.requests).toHaveLength(2);
    expect((await getRun()).metadata.resourceVersion).toBe(version);
  });

  test('a wrong label → deployment.failed mismatch; the run stays Verifying for the rollback', async () => {
    verifyingRun();
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    v1.respond = () => ({ status: 200, body: { predictions: [1, 1, 1] } });
    const res = await postEvent(served.url, restarted());
    expect(res.event?.type).toBe(EventTypes.deploymentFailed);
    const message = `pod ${MODEL}-predictor-new-a: 1 of 3 predictions differ from the gate's: row 1 expected -1, got 1`;
    expect(res.event?.data).toEqual({ model: MODEL, run: RUN, release: RUN, reason: 'mismatch', message });
    const run = await getRun();
    expect(run.status).toMatchObject({ phase: 'Verifying', steps: { verify: { finished: '2026-11-22T10:10:00.000Z', outcome: 'mismatch', message } } });
    expect(lease()).toBeDefined();

    // Redelivered before the rollback started: the same event again, no new probe, no new write.
    const version = run.metadata.resourceVersion;
    const again = await postEvent(served.url, restarted());
    expect(again.event?.id).toBe(`${RUN}.deployment.failed`);
    expect(again.event?.data).toEqual(res.event?.data);
    expect(v1.requests).toHaveLength(1);
    expect((await getRun()).metadata.resourceVersion).toBe(version);
  });

  test('floats outside the tolerance → mismatch (predictive-analytics, V1)', async () => {
    useModel('predictive-analytics');
    verifyingRun(PA_ROWS, PA_EXPECTED);
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    v1.respond = () => ({ status: 200, body: { predictions: [PA_EXPECTED[0], [0.91, 0.79, 0.72, 905.25, 499.6]] } });
    const res = await postEvent(served.url, restarted());
    expect(v1.requests[0]).toEqual({ path: '/v1/models/predictive-analytics:predict', body: { instances: PA_ROWS } });
    expect(res.event?.data).toMatchObject({ reason: 'mismatch', message: `pod ${MODEL}-predictor-new-a: 1 of 2 predictions differ from the gate's: row 1 expected [0.91,0.79,0.72,905.25,499.5], got [0.91,0.79,0.72,905.25,499.6]` });
  });

  test('HTTP 500 → http-error', async () => {
    verifyingRun();
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    v1.respond = () => ({ status: 500, body: 'Internal Server Error' });
    const res = await postEvent(served.url, restarted());
    expect(res.event?.data).toEqual({ model: MODEL, run: RUN, release: RUN, reason: 'http-error', message: `pod ${MODEL}-predictor-new-a answered HTTP 500: Internal Server Error` });
    expect(v1.requests).toHaveLength(1);
  });

  test('404 "Model anomaly-detector does not exist" → model-missing', async () => {
    verifyingRun();
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    v1.respond = () => ({ status: 404, body: { error: 'Model anomaly-detector does not exist' } });
    const res = await postEvent(served.url, restarted());
    expect(res.event?.data).toEqual({
      model: MODEL, run: RUN, release: RUN, reason: 'model-missing',
      message: `pod ${MODEL}-predictor-new-a has no model loaded (HTTP 404: {"error":"Model anomaly-detector does not exist"})`,
    });
  });

  test('a closed port (transport error after quick retries) → http-error', async () => {
    verifyingRun();
    const closed = await startStandIn();
    const port = closed.port;
    await closed.close();
    createPod(`${MODEL}-predictor-new-a`, RUN, true, port);
    const res = await postEvent(served.url, restarted());
    expect(res.event?.data).toMatchObject({ reason: 'http-error' });
    expect((res.event?.data as { message: string }).message).toContain('after 3 attempts');
  });

  test('only old-release pods Ready → empty, nothing probed, run unchanged', async () => {
    verifyingRun();
    createPod(`${MODEL}-predictor-old-a`, `${MODEL}-00000000p0`, true, v1.port);
    createPod(`${MODEL}-predictor-new-a`, RUN, false, v1.port);
    const version = (await getRun()).metadata.resourceVersion;
    const res = await postEvent(served.url, restarted());
    expect(res.status).toBe(204);
    expect(v1.requests).toEqual([]);
    expect((await getRun()).metadata.resourceVersion).toBe(version);
  });

  test('a new pod Ready while an old one still is Ready (surge / Serverless drain) → verified on the new pod alone', async () => {
    verifyingRun();
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    const oldStandIn = await startStandIn();
    try {
      createPod(`${MODEL}-predictor-old-a`, `${MODEL}-00000000p0`, true, oldStandIn.port);
      v1.respond = () => ({ status: 200, body: { predictions: AD_EXPECTED } });
      const res = await postEvent(served.url, restarted());
      expect(res.event?.type).toBe(EventTypes.deploymentVerified);
      expect(res.event?.data).toMatchObject({ pods: [`${MODEL}-predictor-new-a`], matched: 3 });
      // The old pod was never probed as if it were new.
      expect(oldStandIn.requests).toEqual([]);
      expect((await getRun()).status?.phase).toBe('Succeeded');
    } finally {
      await oldStandIn.close();
    }
  });

  test('an old pod\'s events reach the new run: new pod NotReady → wait; it turns Ready; then a delete event about the OLD pod concludes', async () => {
    verifyingRun();
    const oldPod = createPod(`${MODEL}-predictor-old-a`, `${MODEL}-00000000p0`, true, v1.port);
    createPod(`${MODEL}-predictor-new-a`, RUN, false, v1.port);
    v1.respond = () => ({ status: 200, body: { predictions: AD_EXPECTED } });
    expect((await postEvent(served.url, restarted())).status).toBe(204);
    expect(v1.requests).toEqual([]);
    // The new pod's Ready update was lost (lossy source); the old pod is deleted and only its delete event arrives.
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port, true);
    store().delete(GVR.pods, { name: `${MODEL}-predictor-old-a`, namespace: NAMESPACE });
    const res = await postEvent(served.url, podEvent(oldPod, 'delete'));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.deploymentVerified);
    expect(res.event?.data).toMatchObject({ run: RUN, pods: [`${MODEL}-predictor-new-a`], matched: 3 });
    expect(v1.requests).toHaveLength(1);
    expect((await getRun()).status?.phase).toBe('Succeeded');
  });

  test('a new pod restarting: Ready false → wait; unreachable while the list still said Ready → wait, not a failure; Ready again → verified', async () => {
    verifyingRun();
    const restarting = createPod(`${MODEL}-predictor-new-a`, RUN, false, v1.port);
    expect((await postEvent(served.url, podEvent(restarting, 'update'))).status).toBe(204);
    expect(v1.requests).toEqual([]);
    // Ready in the list, but the container crashes on the probe: the kubelet marks it NotReady, the connection drops.
    const crashy = createServer((req) => {
      createPod(`${MODEL}-predictor-new-a`, RUN, false, port, true);
      req.socket.destroy();
    });
    await new Promise<void>((r) => crashy.listen(0, '127.0.0.1', r));
    const port = (crashy.address() as { port: number }).port;
    try {
      createPod(`${MODEL}-predictor-new-a`, RUN, true, port, true);
      const during = await postEvent(served.url, podEvent(restarting, 'update'));
      expect(during.status).toBe(204);
      expect((await getRun()).status?.steps?.verify?.finished).toBeUndefined();
    } finally {
      await new Promise<void>((r) => { crashy.closeAllConnections(); crashy.close(() => r()); });
    }

    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port, true);
    v1.respond = () => ({ status: 200, body: { predictions: AD_EXPECTED } });
    const res = await postEvent(served.url, podEvent(restarting, 'update'));
    expect(res.event?.type).toBe(EventTypes.deploymentVerified);
  });

  test('V2 protocol catalog variant: infer request with FP64 input, outputs reshaped and compared', async () => {
    useModel('predictive-analytics');
    verifyingRun(PA_ROWS, PA_EXPECTED);
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v2.port);
    v2.respond = () => ({ status: 200, body: { model_name: MODEL, outputs: [{ name: 'output-0', shape: [2, 5], datatype: 'FP64', data: PA_EXPECTED.flat().map((x) => x * (1 + 1e-7)) }] } });
    const res = await postEvent(servedV2.url, restarted());
    expect(v2.requests).toEqual([{ path: '/v2/models/predictive-analytics/infer', body: { inputs: [{ name: 'input-0', shape: [2, 5], datatype: 'FP64', data: PA_ROWS.flat() }] } }]);
    expect(res.event?.type).toBe(EventTypes.deploymentVerified);
    expect(res.event?.data).toMatchObject({ run: RUN, pods: [`${MODEL}-predictor-new-a`], matched: 2 });
    expect((await getRun()).status?.phase).toBe('Succeeded');
  });

  test('a predictor Pod update verifies the same way as predictor.restarted; other pods are ignored', async () => {
    verifyingRun();
    const pod = createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    v1.respond = () => ({ status: 200, body: { predictions: AD_EXPECTED } });
    const foreign = { ...pod, metadata: { ...pod.metadata, name: 'other', labels: { 'serving.kserve.io/inferenceservice': 'predictive-analytics' } } };
    expect((await postEvent(served.url, podUpdate(foreign))).status).toBe(204);
    expect(v1.requests).toEqual([]);

    // Any pod of the model's InferenceService, whatever release it carries (here none), is a reason to look again.
    const unannotated = { ...pod, metadata: { ...pod.metadata, name: 'legacy', annotations: {} } };
    const res = await postEvent(served.url, podUpdate(unannotated));
    expect(res.status).toBe(200);
    expect(res.event?.type).toBe(EventTypes.deploymentVerified);
    expect(res.event?.data).toEqual({ model: MODEL, run: RUN, release: RUN, verifiedAt: '2026-11-22T10:10:00.000Z', pods: [`${MODEL}-predictor-new-a`], matched: 3 });
    expect((await getRun()).status?.phase).toBe('Succeeded');
    expect(lease()).toBeUndefined();
    // Later pod updates are silent.
    expect((await postEvent(served.url, podUpdate(pod))).status).toBe(204);
    expect(v1.requests).toHaveLength(1);
  });

  test('a run that is not Verifying is left alone', async () => {
    createRun({ phase: 'RolledBack', release: { promoted: RUN, replaced: `${MODEL}-00000000p0` }, steps: { promote: { finished: '2026-11-22T10:02:00.000Z', outcome: 'promoted' } } });
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    expect((await postEvent(served.url, restarted())).status).toBe(204);
    expect(v1.requests).toEqual([]);
  });

  test('a predictor.restarted the run\'s promote record does not confirm, or from another source, is refused (422) and probes nothing', async () => {
    createRun({ phase: 'Promoting' });
    createPod(`${MODEL}-predictor-new-a`, RUN, true, v1.port);
    const res = await postEvent(served.url, restarted());
    expect(res.status).toBe(422);
    expect(JSON.parse(res.body).error).toBe(`refused by rule record: dev.mlops.predictor.restarted.v1 for run ${RUN} disagrees with the ModelRun: its promote record says nothing yet`);
    const forged = restarted();
    const fromElsewhere = new CloudEvent({ ...forged.toJSON(), source: '/model-lifecycle/gate-health' });
    const res2 = await postEvent(served.url, fromElsewhere);
    expect(res2.status).toBe(422);
    expect(JSON.parse(res2.body).error).toBe('refused by rule sender: dev.mlops.predictor.restarted.v1 is honoured only from /model-lifecycle/restart-predictor, not from "/model-lifecycle/gate-health"');
    expect(v1.requests).toEqual([]);
    expect((await getRun()).status?.steps?.verify).toBeUndefined();
  });

  describe('a restored release (rollback verified like a promotion)', () => {
    const PREV = (): string => `${MODEL}-00000000p0`;
    const PREV_EXPECTED = [-1, 1, -1];

    /** The ModelRun that promoted PREV, with the probe rows and outputs its gate approved. */
    function approvedRun(name: string, expected: unknown[]): void {
      const stored = store().create(GVR.modelruns, {
        apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
        metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': MODEL, 'mlops.dev/run': name } },
        spec: { model: MODEL, trigger: 'schedule', idempotencyKey: `k-${name}`, profile: 'cpu' },
      });
      store().updateStatus(GVR.modelruns, { ...stored, status: { phase: 'Succeeded', gate: { verdict: 'approved' }, probe: { rows: AD_ROWS, expected }, steps: { verify: { outcome: 'verified' } } } });
    }

    /** RUN failed verification; PREV was put back; restoring began at `startedAt` (an old PREV pod predates it). */
    async function restoringRun(): Promise<void> {
      // A pod of PREV that predates the rollback (a Serverless Revision still draining): never the rollout's.
      createPod(`${MODEL}-predictor-00001-old`, PREV(), true, v2.port);
      await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has whole seconds
      const startedAt = new Date().toISOString();
      createRun({
        phase: 'Verifying', step: 'rollback', startedAt: '2026-11-22T09:00:00.000Z',
        release: { promoted: RUN, replaced: PREV() },
        probe: { rows: AD_ROWS, expected: AD_EXPECTED },
        rollback: { release: PREV(), startedAt },
        steps: {
          promote: { finished: '2026-11-22T10:02:00.000Z', outcome: 'promoted' },
          verify: { finished: '2026-11-22T10:05:00.000Z', outcome: 'mismatch', message: 'pod a: row 1 expected -1, got 1' },
          rollback: { started: '2026-11-22T10:05:10.000Z', finished: startedAt, outcome: 'restored' },
        },
      });
      createPod(`${MODEL}-predictor-00003-new`, RUN, false, v1.port); // the failed release's pod, scaled down
      v2.respond = () => ({ status: 200, body: { predictions: [9, 9, 9] } });
    }

    // issue 12, "A rollback restores the previous release but nothing checks that it serves".
    test('bug: rollback unchecked — the restored release answers its own gate\'s probe rows on the NEW pods → deployment.rolledback, RolledBack, lock freed', async () => {
      approvedRun(PREV(), PREV_EXPECTED);
      await restoringRun();
      const pending = createPod(`${MODEL}-predictor-00004-restored`, PREV(), false, v1.port);
      // Not Ready yet: wait (no probe, no write).
      expect((await postEvent(served.url, podUpdate(pending))).status).toBe(204);
      expect((await getRun()).status?.rollback?.verified).toBeUndefined();
      const ready = createPod(`${MODEL}-predictor-00004-restored`, PREV(), true, v1.port, true);
      v1.respond = () => ({ status: 200, body: { predictions: PREV_EXPECTED } });
      expect((await postEvent(served.url, podUpdate(ready))).status).toBe(204);

      expect(v1.requests).toEqual([{ path: '/v1/models/anomaly-detector:predict', body: { instances: AD_ROWS } }]);
      expect(v2.requests).toEqual([]); // the pre-rollback pod of PREV is not the rollout's
      const run = await getRun();
      expect(run.status).toMatchObject({
        phase: 'RolledBack', release: { promoted: RUN, replaced: PREV(), restored: PREV() },
        rollback: { release: PREV(), verified: true, check: 'gate-probe', finished: '2026-11-22T10:10:00.000Z' },
      });
      expect(run.status?.message).toBe(`release ${RUN} failed verification (pod a: row 1 expected -1, got 1); rolled back to ${PREV()}, verified on 1 new pod(s) ${MODEL}-predictor-00004-restored: 3 predictions matched ${PREV()}'s gate record`);
      const notice = sink.events.find((e) => e.type === EventTypes.deploymentRolledback);
      expect(notice?.id).toBe(`${RUN}.deployment.rolledback`);
      expect(notice?.source).toBe('/model-lifecycle/verify-endpoint');
      expect(notice?.data).toEqual({ model: MODEL, run: RUN, failedRelease: RUN, restoredRelease: PREV(), message: run.status?.message });
      expect(lease()).toBeUndefined();
    });

    test('a restored release that does not answer as its gate approved → run.failed rollback-unverified, Failed, lock freed, nothing else changed', async () => {
      approvedRun(PREV(), PREV_EXPECTED);
      await restoringRun();
      createPod(`${MODEL}-predictor-00004-restored`, PREV(), true, v1.port);
      cluster.emulator.resetRequests();
      v1.respond = () => ({ status: 200, body: { predictions: AD_EXPECTED } }); // the failed release's answers
      const reconcile = buildEvent(EventTypes.runReconcile, { step: 'watchdog', data: { model: MODEL, run: RUN, target: 'verify-endpoint', reason: '1 restored pod(s) Ready' }, id: `${RUN}.reconcile.v` });
      expect((await postEvent(served.url, reconcile)).status).toBe(204);
      const run = await getRun();
      expect(run.status).toMatchObject({ phase: 'Failed', rollback: { release: PREV(), verified: false, check: 'gate-probe' } });
      expect(run.status?.release?.restored).toBeUndefined();
      expect(run.status?.message).toMatch(new RegExp(`^ROLLBACK UNVERIFIED: ${RUN} failed verification and ${PREV()} was restored, but ${PREV()} does not answer its probe rows`));
      const notice = sink.events.find((e) => e.type === EventTypes.runFailed);
      expect(notice?.data).toMatchObject({ model: MODEL, run: RUN, step: 'rollback', reason: 'rollback-unverified' });
      expect(lease()).toBeUndefined();
      // Its writes: the verdict and the end on the ModelRun (status, phase label) and the freed lock; nothing else.
      const written = new Set(cluster.emulator.requests.filter((r) => !['get', 'list', 'watch'].includes(r.verb)).map((r) => `${r.resource}${r.subresource ? `/${r.subresource}` : ''}`));
      expect(written.has('modelruns/status')).toBe(true);
      expect([...written].filter((w) => !['modelruns/status', 'modelruns', 'leases'].includes(w))).toEqual([]);
    });

    test('a restored release without a gate record of ours is checked for well-formed answers', async () => {
      await restoringRun();
      createPod(`${MODEL}-predictor-00004-restored`, PREV(), true, v1.port);
      v1.respond = () => ({ status: 200, body: { predictions: [1, 1, 'x'] } });
      expect((await postEvent(served.url, podUpdate(store().get(GVR.pods, { name: `${MODEL}-predictor-00004-restored`, namespace: NAMESPACE })!))).status).toBe(204);
      const run = await getRun();
      expect(run.status).toMatchObject({ phase: 'Failed', rollback: { verified: false, check: 'answers' } });
      expect(run.status?.rollback?.message).toBe(`pod ${MODEL}-predictor-00004-restored: row 2 answered "x", not a label in [1,-1]`);
    });
  });
});
