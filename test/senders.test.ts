// The hostile-input corpus for the functions behind the Broker (test/corpus/broker-events.json): forged sources,
// records that disagree and forbidden overrides, each posted over real HTTP to the real step against the
// emulator. Every one gets its 4xx with the reason, sends nothing and writes nothing (docs/security.md).
import { readFileSync } from 'node:fs';
import { CloudEvent } from 'cloudevents';
import type { ModelRunStatus } from '../runtime/resources.ts';
import type { StepDefinition } from '../runtime/step.ts';
import { NAMESPACE, postEvent, serveForTest, startRecordingSink, startTestCluster, type RecordingSink, type ServedStep, type TestCluster } from './kit.ts';
import { step as startTraining } from '../functions/start-training/index.ts';
import { step as gateHealth } from '../functions/gate-health/index.ts';
import { step as copyGpuModel } from '../functions/copy-gpu-model/index.ts';
import { step as restartPredictor } from '../functions/restart-predictor/index.ts';
import { step as verifyEndpoint } from '../functions/verify-endpoint/index.ts';

interface Entry { name: string; why: string; step: string; event: { type: string; source: string; data: unknown }; expectStatus: number; expectError: string }
const corpus = (JSON.parse(readFileSync('test/corpus/broker-events.json', 'utf8')) as { entries: Entry[] }).entries;
const STEPS: Record<string, StepDefinition> = {
  'start-training': startTraining, 'gate-health': gateHealth, 'copy-gpu-model': copyGpuModel, 'restart-predictor': restartPredictor, 'verify-endpoint': verifyEndpoint,
};
const MODELRUNS = { group: 'lifecycle.mlops.dev', version: 'v1alpha1', resource: 'modelruns' };
const WATCHED = [
  MODELRUNS,
  { group: 'mlops.mlops.dev', version: 'v1alpha1', resource: 'notebookvalidationjobs' },
  { group: 'batch', version: 'v1', resource: 'jobs' },
  { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' },
  { group: 'serving.kserve.io', version: 'v1beta1', resource: 'inferenceservices' },
];
const at = (m: number): string => new Date(Date.UTC(2026, 10, 22, 9, m)).toISOString();
const done = (outcome: string, m = 30): { started: string; finished: string; outcome: string } => ({ started: at(m - 10), finished: at(m), outcome });

/** The runs the corpus names, each in the state its entries contradict. */
const RUNS: Array<[string, 'anomaly-detector' | 'predictive-analytics', 'cpu' | 'gpu', ModelRunStatus]> = [
  ['anomaly-detector-aaaaaaaaa1', 'anomaly-detector', 'cpu', { phase: 'Training', step: 'training', steps: { training: { started: at(0) } } }],
  ['anomaly-detector-aaaaaaaaa3', 'anomaly-detector', 'cpu', { phase: 'Rejected', steps: { training: done('Succeeded', 10), gate: done('rejected', 20) }, gate: { verdict: 'rejected' } }],
  ['anomaly-detector-aaaaaaaaa4', 'anomaly-detector', 'cpu', { phase: 'Promoting', step: 'promote', steps: { training: done('Succeeded', 10) } }],
  ['anomaly-detector-aaaaaaaaa5', 'anomaly-detector', 'cpu', { phase: 'Verifying', step: 'verify', release: { promoted: 'anomaly-detector-aaaaaaaaa5', replaced: 'anomaly-detector-00000000p0' },
    steps: { training: done('Succeeded', 10), gate: done('approved', 20), promote: done('promoted', 30), verify: { started: at(31) } } }],
  ['anomaly-detector-aaaaaaaaa6', 'anomaly-detector', 'cpu', { phase: 'Succeeded', release: { promoted: 'anomaly-detector-aaaaaaaaa6', replaced: null },
    steps: { training: done('Succeeded', 10), gate: done('approved', 20), promote: done('promoted', 30), verify: done('verified', 40) } }],
  ['predictive-analytics-bbbbbbbbb1', 'predictive-analytics', 'gpu', { phase: 'Copying', step: 'copy', steps: { training: done('Succeeded', 10), copy: { started: at(11) } } }],
  ['predictive-analytics-bbbbbbbbb2', 'predictive-analytics', 'gpu', { phase: 'Failed', steps: { training: done('Succeeded', 10), copy: done('checksum-mismatch', 20) } }],
  ['predictive-analytics-bbbbbbbbb3', 'predictive-analytics', 'gpu', { phase: 'Training', step: 'training', steps: { training: { started: at(0) } } }],
];

describe('hostile CloudEvents to the steps behind the Broker (test/corpus/broker-events.json)', () => {
  let cluster: TestCluster;
  let sink: RecordingSink;
  const served: Record<string, ServedStep> = {};
  let before = '';

  const snapshot = (): string => JSON.stringify(WATCHED.map((gvr) => cluster.emulator.store.list(gvr, { namespace: NAMESPACE })));

  beforeAll(async () => {
    cluster = await startTestCluster();
    sink = await startRecordingSink();
    for (const [name, step] of Object.entries(STEPS)) served[name] = await serveForTest(step, { cluster, sinkUrl: sink.url });
    for (const [name, model, profile, status] of RUNS) {
      const stored = cluster.emulator.store.create(MODELRUNS, {
        apiVersion: 'lifecycle.mlops.dev/v1alpha1', kind: 'ModelRun',
        metadata: { name, namespace: NAMESPACE, labels: { 'app.kubernetes.io/managed-by': 'model-lifecycle', 'mlops.dev/model': model, 'mlops.dev/run': name } },
        spec: { model, trigger: 'schedule', idempotencyKey: `k-${name}`, profile },
      });
      cluster.emulator.store.updateStatus(MODELRUNS, { ...stored, status });
    }
    cluster.emulator.store.create({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases' }, {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'model-lock-anomaly-detector', namespace: NAMESPACE }, spec: { holderIdentity: 'anomaly-detector-aaaaaaaaa5', leaseDurationSeconds: 3600 },
    });
    before = snapshot();
  }, 60_000);
  afterAll(async () => {
    for (const s of Object.values(served)) await s.close();
    await sink.close();
    await cluster.close();
  });
  beforeEach(() => cluster.emulator.resetRequests());

  test('the corpus, with the intakes\' corpora, has at least 100 cases, every name unique, every step served', () => {
    const intakes = ['test/corpus/drift-intake.json', 'test/corpus/git-intake.json']
      .map((f) => (JSON.parse(readFileSync(f, 'utf8')) as { entries: unknown[] }).entries.length).reduce((a, b) => a + b, 0);
    expect(corpus.length + intakes).toBeGreaterThanOrEqual(100);
    expect(new Set(corpus.map((e) => e.name)).size).toBe(corpus.length);
    expect(corpus.every((e) => Object.hasOwn(STEPS, e.step))).toBe(true);
    // Forged sources and forbidden overrides are both well represented.
    expect(corpus.filter((e) => e.expectError.includes('rule sender')).length).toBeGreaterThanOrEqual(15);
    expect(corpus.filter((e) => e.expectError.includes('rule overrides')).length).toBeGreaterThanOrEqual(15);
  });

  test.each(corpus.map((e) => [e.name, e] as const))('%s → 4xx with its reason, nothing sent, nothing written', async (_name, entry) => {
    const event = new CloudEvent({ ...entry.event, id: `corpus-${entry.name}`, datacontenttype: 'application/json' });
    const res = await postEvent(served[entry.step]!.url, event);
    expect(res.status).toBe(entry.expectStatus);
    const body = JSON.parse(res.body) as { error: string; kind: string };
    expect(body.error).toMatch(new RegExp(entry.expectError));
    expect(sink.events).toEqual([]);
    expect(cluster.emulator.requests.filter((r) => !['get', 'list', 'watch'].includes(r.verb))).toEqual([]);
    expect(snapshot()).toBe(before);
  });
});
