import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { StoredObject } from '../emulator/index.ts';
import { releaseModelFile, startKServeSimulator } from './kserve.ts';
import type { KServeSimulator } from './kserve.ts';
import { writeModelFile } from './model-files.ts';
import { JOBS_DIR, pythonEnv, runProcess } from './python.ts';
import { Scenarios } from './scenarios.ts';
import { standinGateReport } from './gate-standin.ts';
import { NS, PY, startSimCluster } from './testkit.ts';
import type { SimCluster } from './testkit.ts';

const isvcSel = { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService' };
const podSel = { apiVersion: 'v1', kind: 'Pod' };

let cluster: SimCluster;
const sims: KServeSimulator[] = [];

beforeAll(async () => {
  cluster = await startSimCluster();
});

afterAll(async () => {
  await Promise.all(sims.map((s) => s.close()));
  await cluster.close();
});

function podsOf(isvc: string, namespace = NS): StoredObject[] {
  return cluster.store.list(podSel, { namespace, labelSelector: `serving.kserve.io/inferenceservice=${isvc}` });
}

function endpoint(pod: StoredObject): string {
  const port = (pod.spec as { containers: Array<{ ports: Array<{ containerPort: number }> }> }).containers[0]?.ports[0]?.containerPort;
  return `http://${(pod.status as { podIP: string }).podIP}:${port}`;
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Runs the real gate.py on a model folder and returns its report. */
async function realGate(modelDir: string, env: Record<string, string>): Promise<{ ok: boolean; probe: { rows: number[][]; expected: unknown[] } }> {
  const proc = runProcess(PY, [path.join(JOBS_DIR, 'gate.py')], { env: pythonEnv({ MODEL_DIR: modelDir, MIN_BYTES: '1000', TERMINATION_LOG: '/dev/null', ...env }), timeoutMs: 60_000 });
  const result = await proc.done;
  return JSON.parse(result.stdout.trim()) as { ok: boolean; probe: { rows: number[][]; expected: unknown[] } };
}

describe('KServe simulator (real sklearn)', () => {
  let sim: KServeSimulator;
  const shared = (): string => path.join(cluster.stateDir, 'pvc', 'model-storage-pvc');

  beforeAll(async () => {
    // The anomaly model is served from the start; predictive-analytics has no model yet.
    await writeModelFile({ model: 'anomaly-detector', features: 45, output: { kind: 'label', labels: [1, -1] }, outPath: path.join(shared(), 'anomaly-detector', 'model.pkl') }, { python: PY, sklearn: true });
    sim = await startKServeSimulator({ store: cluster.store, stateDir: cluster.stateDir, namespace: NS, catalog: cluster.catalog, scenario: Scenarios['happy-cpu'], python: PY, drainSeconds: 0 });
    sims.push(sim);
    await sim.settled();
  });

  test('creates one InferenceService per catalog model and a Ready predictor pod for each', () => {
    const isvc = cluster.store.get(isvcSel, { name: 'anomaly-detector', namespace: NS });
    expect(isvc?.spec).toEqual({ predictor: { model: { modelFormat: { name: 'sklearn' }, storageUri: 'pvc://model-storage-pvc/anomaly-detector', protocolVersion: 'v1' } } });
    expect((isvc?.status as { url?: string }).url).toBe('http://anomaly-detector.mlops.example.com');
    for (const name of ['anomaly-detector', 'predictive-analytics']) {
      const pods = podsOf(name);
      expect(pods).toHaveLength(1);
      const pod = pods[0] as StoredObject;
      expect(pod.metadata.labels).toMatchObject({ 'serving.kserve.io/inferenceservice': name, app: `${name}-predictor` });
      expect((pod.status as { phase: string }).phase).toBe('Running');
      expect((pod.status as { conditions: Array<{ type: string; status: string }> }).conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
      expect((pod.spec as { containers: Array<{ name: string }> }).containers[0]?.name).toBe('kserve-container');
    }
  });

  test('serves real predictions (V1 and V2) equal to what gate.py predicted on the same rows', async () => {
    const pod = podsOf('anomaly-detector')[0] as StoredObject;
    const report = await realGate(path.join(shared(), 'anomaly-detector'), { FEATURES: '45', OUTPUT_KIND: 'label', LABELS: '[1,-1]' });
    expect(report.ok).toBe(true);
    const v1 = await post(`${endpoint(pod)}/v1/models/anomaly-detector:predict`, { instances: report.probe.rows });
    expect(v1.status).toBe(200);
    expect(v1.body['predictions']).toEqual(report.probe.expected);
    const rows = report.probe.rows;
    const v2 = await post(`${endpoint(pod)}/v2/models/anomaly-detector/infer`, { inputs: [{ name: 'input-0', shape: [rows.length, 45], datatype: 'FP64', data: rows.flat() }] });
    expect(v2.status).toBe(200);
    expect(v2.body['outputs']).toEqual([{ name: 'output-0', shape: [rows.length], datatype: 'INT64', data: report.probe.expected }]);
    const ready = await fetch(`${endpoint(pod)}/v1/models/anomaly-detector`);
    expect(await ready.json()).toEqual({ name: 'anomaly-detector', ready: true });
    const wrongName = await post(`${endpoint(pod)}/v1/models/other:predict`, { instances: rows });
    expect(wrongName).toEqual({ status: 404, body: { error: 'Model other does not exist' } });
  });

  test('no model file → 404 "does not exist"; a model promoted later is served only after a rollout (annotation change)', async () => {
    const before = podsOf('predictive-analytics')[0] as StoredObject;
    const missing = await post(`${endpoint(before)}/v1/models/predictive-analytics:predict`, { instances: [[1, 2, 3, 4, 5]] });
    expect(missing).toEqual({ status: 404, body: { error: 'Model predictive-analytics does not exist' } });

    const dir = path.join(shared(), 'predictive-analytics');
    await writeModelFile({ model: 'predictive-analytics', features: 5, output: { kind: 'regression', width: 5 }, outPath: path.join(dir, 'model.pkl') }, { python: PY, sklearn: true });
    // Loaded at start only: the running pod still has no model.
    expect((await post(`${endpoint(before)}/v1/models/predictive-analytics:predict`, { instances: [[1, 2, 3, 4, 5]] })).status).toBe(404);

    cluster.store.patchMerge(isvcSel, { name: 'predictive-analytics', namespace: NS }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': 'predictive-analytics-0123456789' } } } });
    await sim.settled();
    const pods = podsOf('predictive-analytics');
    expect(pods).toHaveLength(1);
    const after = pods[0] as StoredObject;
    expect(after.metadata.name).not.toBe(before.metadata.name);
    expect(after.metadata.annotations?.['mlops.dev/model-release']).toBe('predictive-analytics-0123456789');
    expect((after.status as { conditions: Array<{ type: string; status: string }> }).conditions).toContainEqual(expect.objectContaining({ type: 'Ready', status: 'True' }));
    expect(cluster.store.get(podSel, { name: before.metadata.name, namespace: NS })).toBeUndefined();
    await expect(fetch(`${endpoint(before)}/v2/health/ready`)).rejects.toThrow();

    const report = await realGate(dir, { FEATURES: '5', OUTPUT_KIND: 'regression', OUTPUT_WIDTH: '5' });
    const rows = report.probe.rows;
    const v2 = await post(`${endpoint(after)}/v2/models/predictive-analytics/infer`, { inputs: [{ name: 'input-0', shape: [rows.length, 5], datatype: 'FP64', data: rows.flat() }] });
    expect(v2.status).toBe(200);
    const out = (v2.body['outputs'] as Array<{ shape: number[]; data: number[]; datatype: string }>)[0];
    expect(out?.shape).toEqual([rows.length, 5]);
    expect(out?.datatype).toBe('FP64');
    const expected = (report.probe.expected as number[][]).flat();
    out?.data.forEach((v, i) => expect(Math.abs(v - (expected[i] as number))).toBeLessThan(1e-6));

    // A status-only write or an unrelated change does not roll.
    cluster.store.patchMerge(isvcSel, { name: 'predictive-analytics', namespace: NS }, { metadata: { labels: { touched: 'yes' } } });
    await sim.settled();
    expect(podsOf('predictive-analytics').map((p) => p.metadata.name)).toEqual([after.metadata.name]);
  });
});

describe('KServe simulator scenarios and stand-ins', () => {
  const NS2 = 'rollback';
  const NS3 = 'standin';

  beforeAll(async () => {
    await cluster.emulator.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS2 } }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS3 } }]);
  });

  test('verify-fail-rollback: a seeded release is served right; the next release answers wrong; rolling back restores it', async () => {
    const stateDir = path.join(cluster.stateDir, 'rollback-state');
    const sim = await startKServeSimulator({ store: cluster.store, stateDir, namespace: NS2, catalog: cluster.catalog, scenario: Scenarios['verify-fail-rollback'], python: PY, drainSeconds: 0 });
    sims.push(sim);
    await sim.settled();
    const isvc = cluster.store.get(isvcSel, { name: 'anomaly-detector', namespace: NS2 });
    const seed = (isvc?.spec as { predictor: { annotations: Record<string, string> } }).predictor.annotations['mlops.dev/model-release'];
    expect(seed).toBe('anomaly-detector-seed');
    const report = await realGate(path.join(stateDir, 'pvc', 'model-storage-pvc', 'anomaly-detector'), { FEATURES: '45', OUTPUT_KIND: 'label', LABELS: '[1,-1]' });
    const predict = async (): Promise<unknown> => {
      const pod = podsOf('anomaly-detector', NS2)[0] as StoredObject;
      return (await post(`${endpoint(pod)}/v1/models/anomaly-detector:predict`, { instances: report.probe.rows })).body['predictions'];
    };
    expect(await predict()).toEqual(report.probe.expected);

    cluster.store.patchMerge(isvcSel, { name: 'anomaly-detector', namespace: NS2 }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': 'anomaly-detector-9999999999' } } } });
    await sim.settled();
    expect(await predict()).toEqual((report.probe.expected as number[]).map((v) => -v));

    cluster.store.patchMerge(isvcSel, { name: 'anomaly-detector', namespace: NS2 }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': seed } } } });
    await sim.settled();
    expect(podsOf('anomaly-detector', NS2)[0]?.metadata.annotations?.['mlops.dev/model-release']).toBe(seed);
    expect(await predict()).toEqual(report.probe.expected);
    await sim.close();
  });

  test('without sklearn: stand-in predictions equal the simulated gate report expectations (same function)', async () => {
    const stateDir = path.join(cluster.stateDir, 'standin-state');
    const sim = await startKServeSimulator({ store: cluster.store, stateDir, namespace: NS3, catalog: cluster.catalog, scenario: Scenarios['happy-cpu'], sklearn: false, seedReleases: true, drainSeconds: 0 });
    sims.push(sim);
    await sim.settled();
    expect(sim.pods().map((p) => [p.isvc, p.backend]).sort()).toEqual([['anomaly-detector', 'standin'], ['predictive-analytics', 'standin']]);
    for (const [name, env] of [['anomaly-detector', { FEATURES: '45', OUTPUT_KIND: 'label', LABELS: '[1,-1]' }], ['predictive-analytics', { FEATURES: '5', OUTPUT_KIND: 'regression', OUTPUT_WIDTH: '5' }]] as const) {
      const report = await standinGateReport({ MODEL_DIR: path.join(stateDir, 'pvc', 'model-storage-pvc', name), MIN_BYTES: '1000', ...env });
      expect(report.ok).toBe(true);
      const pod = podsOf(name, NS3)[0] as StoredObject;
      const v1 = await post(`${endpoint(pod)}/v1/models/${name}:predict`, { instances: report.probe.rows });
      expect(v1).toEqual({ status: 200, body: { predictions: report.probe.expected } });
    }
    await sim.close();
    // close() stops the servers.
    expect(sim.pods()).toEqual([]);
  });
});

interface PodSnap { type: string; name: string; release: string; ready: boolean; terminating: boolean; restarts: number; revision?: string; at: number }

describe('KServe simulator rollouts (stand-in models, short drains)', () => {
  let n = 0;
  async function setup(opts: { rollout: 'raw' | 'serverless'; drainSeconds: number; readyDelaySeconds?: number; restartOnce?: boolean; replicas?: number }) {
    const namespace = `roll-${n++}`;
    await cluster.emulator.applyManifests([{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }]);
    const stateDir = path.join(cluster.stateDir, `${namespace}-state`);
    const sim = await startKServeSimulator({ store: cluster.store, stateDir, namespace, catalog: cluster.catalog, scenario: Scenarios['happy-cpu'], sklearn: false, seedReleases: true, ...opts });
    sims.push(sim);
    if (opts.replicas) cluster.store.patchMerge(isvcSel, { name: 'anomaly-detector', namespace }, { spec: { predictor: { minReplicas: opts.replicas } } });
    await sim.settled();
    const events: PodSnap[] = [];
    const t0 = Date.now();
    const record = (e: { type: string; object: StoredObject }): void => {
      const o = e.object;
      const status = o.status as { conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ restartCount: number }> } | undefined;
      events.push({
        type: e.type, name: o.metadata.name, release: o.metadata.annotations?.['mlops.dev/model-release'] ?? '',
        ready: status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
        terminating: o.metadata.deletionTimestamp !== undefined, restarts: status?.containerStatuses?.[0]?.restartCount ?? 0,
        ...(o.metadata.labels?.['serving.knative.dev/revision'] ? { revision: o.metadata.labels['serving.knative.dev/revision'] } : {}), at: Date.now() - t0,
      });
    };
    // The pods before the rollout, as a watch starting now would list them, then every change.
    for (const o of podsOf('anomaly-detector', namespace)) record({ type: 'ADDED', object: o });
    const stop = cluster.store.subscribe({ resource: podSel, namespace, labelSelector: 'serving.kserve.io/inferenceservice=anomaly-detector' }, record);
    const roll = (release: string) => cluster.store.patchMerge(isvcSel, { name: 'anomaly-detector', namespace }, { spec: { predictor: { annotations: { 'mlops.dev/model-release': release } } } });
    return { sim, namespace, events, stop, roll };
  }

  /** Replays the watch events: per event, the pods listed and which of them are Ready and not terminating. */
  function replay(events: PodSnap[]): Array<{ listed: PodSnap[]; serving: PodSnap[] }> {
    const cur = new Map<string, PodSnap>();
    return events.map((e) => {
      if (e.type === 'DELETED') cur.delete(e.name);
      else cur.set(e.name, e);
      const listed = [...cur.values()];
      return { listed, serving: listed.filter((p) => p.ready && !p.terminating) };
    });
  }

  test('raw, 4 replicas: surge 1 / unavailable 1; new pods start NotReady; old pods get deletionTimestamp, turn NotReady and stay listed through the grace period', async () => {
    const { sim, events, stop, roll, namespace } = await setup({ rollout: 'raw', drainSeconds: 0.4, readyDelaySeconds: 0.1, replicas: 4 });
    expect(podsOf('anomaly-detector', namespace)).toHaveLength(4);
    roll('anomaly-detector-00000000a1');
    await sim.settled();
    stop();
    const states = replay(events).slice(3); // from the moment the 4 pods before the rollout are listed
    const live = (s: { listed: PodSnap[] }) => s.listed.filter((p) => !p.terminating);
    // maxSurge ceil(25 % of 4) = 1, maxUnavailable floor(25 % of 4) = 1.
    expect(Math.max(...states.map((s) => live(s).length))).toBe(5);
    expect(Math.min(...states.map((s) => s.serving.length))).toBe(3);
    // Every new pod was first seen NotReady.
    const added = events.filter((e) => e.type === 'ADDED' && e.release === 'anomaly-detector-00000000a1');
    expect(added).toHaveLength(4);
    expect(added.every((e) => !e.ready && e.release === 'anomaly-detector-00000000a1')).toBe(true);
    // Old pods: marked for deletion, then NotReady, still listed, then gone only after the grace period.
    const olds = [...new Set(events.filter((e) => e.release !== 'anomaly-detector-00000000a1').map((e) => e.name))];
    expect(olds).toHaveLength(4);
    for (const name of olds) {
      const mine = events.filter((e) => e.name === name);
      const marked = mine.find((e) => e.terminating);
      const gone = mine.find((e) => e.type === 'DELETED');
      expect(marked).toBeDefined();
      expect(mine.filter((e) => e.terminating && e.type === 'MODIFIED').some((e) => !e.ready)).toBe(true);
      expect((gone?.at ?? 0) - (marked?.at ?? 0)).toBeGreaterThanOrEqual(350);
    }
    // At some moment old pods were still Ready (not yet scaled down) while new ones were Ready: the surge.
    expect(states.some((s) => s.serving.some((p) => p.release === 'anomaly-detector-00000000a1') && s.serving.some((p) => p.release !== 'anomaly-detector-00000000a1'))).toBe(true);
    expect(podsOf('anomaly-detector', namespace).map((p) => p.metadata.annotations?.['mlops.dev/model-release'])).toEqual(Array(4).fill('anomaly-detector-00000000a1'));
  });

  test('raw: minReplicas up then down scales the current pods (no rollout)', async () => {
    const { sim, stop, namespace } = await setup({ rollout: 'raw', drainSeconds: 0.1, replicas: 3 });
    stop();
    expect(podsOf('anomaly-detector', namespace)).toHaveLength(3);
    const release = podsOf('anomaly-detector', namespace)[0]?.metadata.annotations?.['mlops.dev/model-release'];
    cluster.store.patchMerge(isvcSel, { name: 'anomaly-detector', namespace }, { spec: { predictor: { minReplicas: 1 } } });
    await sim.settled();
    const left = podsOf('anomaly-detector', namespace);
    expect(left).toHaveLength(1);
    expect(left[0]?.metadata.annotations?.['mlops.dev/model-release']).toBe(release);
  });

  test('raw, 1 replica: the new pod comes up beside the old one (surge 1, unavailable 0); the old one terminates once the new one is Ready', async () => {
    const { sim, events, stop, roll } = await setup({ rollout: 'raw', drainSeconds: 0.3, readyDelaySeconds: 0.1 });
    roll('anomaly-detector-00000000b1');
    await sim.settled();
    stop();
    const states = replay(events);
    expect(Math.min(...states.map((s) => s.serving.length))).toBe(1); // never unavailable
    const newReady = events.find((e) => e.release === 'anomaly-detector-00000000b1' && e.ready)?.at ?? -1;
    const oldMarked = events.find((e) => e.release !== 'anomaly-detector-00000000b1' && e.terminating)?.at ?? -1;
    expect(newReady).toBeGreaterThanOrEqual(0);
    expect(oldMarked).toBeGreaterThanOrEqual(newReady);
  });

  test('serverless: a new Revision beside the old one; the old Revision stays Ready for the drain after traffic moved, then scales down', async () => {
    const { sim, events, stop, roll, namespace } = await setup({ rollout: 'serverless', drainSeconds: 0.5, readyDelaySeconds: 0.1 });
    const first = podsOf('anomaly-detector', namespace)[0] as StoredObject;
    expect(first.metadata.labels?.['serving.knative.dev/revision']).toBe('anomaly-detector-predictor-00001');
    expect(first.metadata.name).toMatch(/^anomaly-detector-predictor-00001-deployment-[0-9a-f]{10}-[a-z0-9]{5}$/);
    roll('anomaly-detector-00000000c1');
    await sim.settled();
    stop();
    const newReady = events.find((e) => e.revision === 'anomaly-detector-predictor-00002' && e.ready)?.at ?? -1;
    const oldMarked = events.find((e) => e.revision === 'anomaly-detector-predictor-00001' && e.terminating)?.at ?? -1;
    const oldGone = events.find((e) => e.revision === 'anomaly-detector-predictor-00001' && e.type === 'DELETED')?.at ?? -1;
    expect(newReady).toBeGreaterThanOrEqual(0);
    expect(oldMarked - newReady).toBeGreaterThanOrEqual(450); // Ready and serving through the drain
    expect(oldGone).toBeGreaterThan(oldMarked);
    const isvc = cluster.store.get(isvcSel, { name: 'anomaly-detector', namespace });
    expect((isvc?.status as { components: { predictor: unknown } }).components.predictor).toMatchObject({ latestReadyRevision: 'anomaly-detector-predictor-00002', traffic: [{ revisionName: 'anomaly-detector-predictor-00002', percent: 100, latestRevision: true }] });
    // Only the new Revision's pod is left.
    expect(podsOf('anomaly-detector', namespace)).toHaveLength(1);
  });

  test('restartOnce: the first new pod restarts once after turning Ready (NotReady, restartCount 1), then is Ready again and serves', async () => {
    const { sim, events, stop, roll, namespace } = await setup({ rollout: 'raw', drainSeconds: 0, readyDelaySeconds: 0.05, restartOnce: true });
    roll('anomaly-detector-00000000d1');
    await sim.settled();
    stop();
    const mine = events.filter((e) => e.release === 'anomaly-detector-00000000d1').map((e) => `${e.ready ? 'Ready' : 'NotReady'}/${e.restarts}`)
      .filter((v, i, all) => v !== all[i - 1]); // ADDED (no status yet) and the first status both read NotReady
    expect(mine).toEqual(['NotReady/0', 'Ready/0', 'NotReady/1', 'Ready/1']);
    const pod = podsOf('anomaly-detector', namespace)[0] as StoredObject;
    const res = await post(`${endpoint(pod)}/v1/models/anomaly-detector:predict`, { instances: [Array.from({ length: 45 }, () => 0.5)] });
    expect(res.status).toBe(200);
  });
});

describe('per-release model folders (config/examples/inferenceservices.yaml)', () => {
  test('a pod loads the release its annotation names when that folder exists, else the legacy served path', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sim-release-'));
    try {
      const folder = path.join(dir, 'pvc', 'model-storage-pvc', '.releases', 'anomaly-detector', 'anomaly-detector-r1');
      mkdirSync(folder, { recursive: true });
      writeFileSync(path.join(folder, 'model.pkl'), 'x');
      const uri = 'pvc://model-storage-pvc/anomaly-detector';
      expect(releaseModelFile(dir, uri, 'anomaly-detector-r1')).toBe(path.join(folder, 'model.pkl'));
      // No such release folder (an operator's value), no release yet, or a storageUri naming a file: the legacy path.
      expect(releaseModelFile(dir, uri, 'anomaly-detector-r2')).toBeUndefined();
      expect(releaseModelFile(dir, uri, '')).toBeUndefined();
      expect(releaseModelFile(dir, 'pvc://model-storage-pvc/anomaly-detector/model.pkl', 'anomaly-detector-r1')).toBeUndefined();
      expect(releaseModelFile(dir, uri, '../../etc')).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
