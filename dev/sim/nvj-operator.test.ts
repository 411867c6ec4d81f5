import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { StoredObject } from '../emulator/index.ts';
import { startNvjOperator, SIMULATED_ANNOTATION } from './nvj-operator.ts';
import type { NvjOperator } from './nvj-operator.ts';
import { Scenarios, TRAINING_FAIL_MESSAGE } from './scenarios.ts';
import type { ScenarioName } from './scenarios.ts';
import { parseStandin } from './standin.ts';
import { NS, PY, createNvj, python, startSimCluster } from './testkit.ts';
import type { SimCluster } from './testkit.ts';

const nvjSel = { apiVersion: 'mlops.mlops.dev/v1alpha1', kind: 'NotebookValidationJob' };
const WALK = ['Initializing', 'Building', 'BuildComplete', 'ValidationRunning', 'Running', 'ValidationRunning', 'Running'];

let cluster: SimCluster;
const operators: NvjOperator[] = [];
const unsubscribes: Array<() => void> = [];

beforeAll(async () => {
  cluster = await startSimCluster();
});

afterAll(async () => {
  for (const u of unsubscribes) u();
  await Promise.all(operators.map((o) => o.close()));
  await cluster.close();
});

/** Every phase the NVJ's status shows, in order, as watchers see it. */
function recordPhases(name: string): string[] {
  const phases: string[] = [];
  unsubscribes.push(cluster.store.subscribe({ resource: nvjSel, namespace: NS, name }, (e) => {
    const phase = (e.object.status as { phase?: string } | undefined)?.phase;
    if (phase && e.type === 'MODIFIED') phases.push(phase);
  }));
  return phases;
}

async function operator(scenario: ScenarioName, extra: { sklearn?: boolean; namespace?: string } = {}): Promise<NvjOperator> {
  const op = await startNvjOperator({ store: cluster.store, stateDir: cluster.stateDir, namespace: extra.namespace ?? NS, scenario: Scenarios[scenario], catalog: cluster.catalog, python: PY, ...(extra.sklearn === false ? { sklearn: false } : {}), delayMs: 0 });
  operators.push(op);
  return op;
}

function statusOf(name: string): Record<string, unknown> {
  return (cluster.store.get(nvjSel, { name, namespace: NS })?.status ?? {}) as Record<string, unknown>;
}

function eventsFor(name: string): StoredObject[] {
  return cluster.store.list({ apiVersion: 'v1', kind: 'Event' }, { namespace: NS }).filter((e) => (e.involvedObject as { name?: string }).name === name);
}

describe('NVJ operator', () => {
  test('happy-cpu: walks the real phases with the flap, then writes a real sklearn model into the run staging folder', async () => {
    const op = await operator('happy-cpu');
    const run = 'anomaly-detector-aaaaaaaaaa';
    const phases = recordPhases(run);
    createNvj(cluster.store, cluster.model('anomaly-detector'), run);
    await op.settled();
    expect(phases).toEqual([...WALK, 'Succeeded']);
    const status = statusOf(run);
    expect(status['message']).toBe('Notebook executed successfully');
    expect(status['retryCount']).toBe(0);
    expect(typeof status['startTime']).toBe('string');
    expect(typeof status['completionTime']).toBe('string');
    expect(cluster.store.get(nvjSel, { name: run, namespace: NS })?.metadata.annotations?.[SIMULATED_ANNOTATION]).toBeUndefined();
    // subPath `.runs/<run>` of the shared PVC + `<MODEL_NAME>/model.pkl`, as the unchanged notebook writes it.
    const file = path.join(cluster.stateDir, 'pvc', 'model-storage-pvc', '.runs', run, 'anomaly-detector', 'model.pkl');
    const loaded = await python('import joblib, sys; m = joblib.load(sys.argv[1]); print(type(m).__name__, m.n_features_in_, sorted(set(m.predict([[0.0]*45, [9.0]*45]).tolist())))', [file]);
    expect(loaded.trim()).toMatch(/^Pipeline 45 \[(-1, )?1\]$|^Pipeline 45 \[-1\]$/);
    expect(eventsFor(run).map((e) => e.reason)).toEqual(['ValidationSucceeded']);
    await op.close();
  });

  test('a GPU NVJ writes into the GPU PVC; regression models have the declared width', async () => {
    const op = await operator('happy-gpu');
    const run = 'predictive-analytics-bbbbbbbbbb';
    const phases = recordPhases(run);
    createNvj(cluster.store, cluster.model('predictive-analytics'), run, 'gpu');
    await op.settled();
    expect(phases).toEqual([...WALK, 'Succeeded']);
    const file = path.join(cluster.stateDir, 'pvc', 'model-storage-gpu-pvc', '.runs', run, 'predictive-analytics', 'model.pkl');
    const out = await python('import joblib, sys; m = joblib.load(sys.argv[1]); print(m.n_features_in_, m.predict([[0.1, 0.2, 0.3, 0.4, 0.5]]).shape)', [file]);
    expect(out.trim()).toBe('5 (1, 5)');
    await op.close();
  });

  test('training-fail: phase Failed with the notebook error, completionTime set, ValidationFailed event', async () => {
    const op = await operator('training-fail');
    const run = 'anomaly-detector-cccccccccc';
    const phases = recordPhases(run);
    createNvj(cluster.store, cluster.model('anomaly-detector'), run);
    await op.settled();
    expect(phases).toEqual([...WALK, 'Failed']);
    expect(statusOf(run)['message']).toBe(TRAINING_FAIL_MESSAGE);
    expect(statusOf(run)['message']).toBe('Notebook execution failed: cell 7 raised ValueError');
    expect(typeof statusOf(run)['completionTime']).toBe('string');
    expect(eventsFor(run).map((e) => [e.reason, e.type])).toEqual([['ValidationFailed', 'Warning']]);
    await op.close();
  });

  test('gate-reject: succeeds but writes a pickled dict', async () => {
    const op = await operator('gate-reject');
    const run = 'anomaly-detector-dddddddddd';
    createNvj(cluster.store, cluster.model('anomaly-detector'), run);
    await op.settled();
    expect(statusOf(run)['phase']).toBe('Succeeded');
    const file = path.join(cluster.stateDir, 'pvc', 'model-storage-pvc', '.runs', run, 'anomaly-detector', 'model.pkl');
    expect((await python('import joblib, sys; print(type(joblib.load(sys.argv[1])).__name__)', [file])).trim()).toBe('dict');
    await op.close();
  });

  test('deadline: stays Running, no completionTime', async () => {
    const op = await operator('deadline');
    const run = 'anomaly-detector-eeeeeeeeee';
    const phases = recordPhases(run);
    createNvj(cluster.store, cluster.model('anomaly-detector'), run);
    await op.settled();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(phases).toEqual(WALK);
    expect(statusOf(run)['phase']).toBe('Running');
    expect(statusOf(run)['completionTime']).toBeUndefined();
    await op.close();
  });

  test('without sklearn: a stand-in file (> 1000 bytes, MLOPS-STANDIN) and the NVJ marked simulated', async () => {
    const op = await operator('happy-cpu', { sklearn: false });
    const run = 'predictive-analytics-ffffffffff';
    createNvj(cluster.store, cluster.model('predictive-analytics'), run, 'cpu');
    await op.settled();
    const nvj = cluster.store.get(nvjSel, { name: run, namespace: NS });
    expect((nvj?.status as { phase?: string }).phase).toBe('Succeeded');
    expect((nvj?.status as { message?: string }).message).toContain('simulated');
    expect(nvj?.metadata.annotations?.[SIMULATED_ANNOTATION]).toBe('stand-in model (sklearn not available)');
    const bytes = await readFile(path.join(cluster.stateDir, 'pvc', 'model-storage-pvc', '.runs', run, 'predictive-analytics', 'model.pkl'));
    expect(bytes.length).toBeGreaterThan(1000);
    expect(bytes.subarray(0, 13).toString()).toBe('MLOPS-STANDIN');
    expect(parseStandin(bytes)).toMatchObject({ model: 'predictive-analytics', features: 5, output: { kind: 'regression', width: 5 } });
    await op.close();
  });

  test('NVJs of other namespaces are not ours', async () => {
    const op = await operator('happy-cpu', { namespace: 'default' });
    createNvj(cluster.store, cluster.model('anomaly-detector'), 'anomaly-detector-gggggggggg');
    await op.settled();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(statusOf('anomaly-detector-gggggggggg')['phase']).toBeUndefined();
    await op.close();
  });

  test('an NVJ deleted mid-walk (the watchdog kills it) is dropped without errors', async () => {
    const op = await startNvjOperator({ store: cluster.store, stateDir: cluster.stateDir, namespace: NS, scenario: Scenarios['happy-cpu'], catalog: cluster.catalog, python: PY, delayMs: 40 });
    operators.push(op);
    const run = 'anomaly-detector-hhhhhhhhhh';
    const phases = recordPhases(run);
    createNvj(cluster.store, cluster.model('anomaly-detector'), run);
    for (let i = 0; i < 200 && !phases.includes('Building'); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    cluster.store.delete(nvjSel, { name: run, namespace: NS });
    await op.settled();
    expect(phases.slice(0, 2)).toEqual(['Initializing', 'Building']);
    expect(phases.length).toBeLessThanOrEqual(3);
    expect(phases).not.toContain('Succeeded');
    expect(cluster.store.get(nvjSel, { name: run, namespace: NS })).toBeUndefined();
    await op.close();
  });
});
