import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { StoredObject } from '../emulator/index.ts';
import { startKServeSimulator } from './kserve.ts';
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
    sim = await startKServeSimulator({ store: cluster.store, stateDir: cluster.stateDir, namespace: NS, catalog: cluster.catalog, scenario: Scenarios['happy-cpu'], python: PY });
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
    const sim = await startKServeSimulator({ store: cluster.store, stateDir, namespace: NS2, catalog: cluster.catalog, scenario: Scenarios['verify-fail-rollback'], python: PY });
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
    const sim = await startKServeSimulator({ store: cluster.store, stateDir, namespace: NS3, catalog: cluster.catalog, scenario: Scenarios['happy-cpu'], sklearn: false, seedReleases: true });
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
