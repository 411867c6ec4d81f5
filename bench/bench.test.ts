// Proves the bench harness works: one quick iteration of each measurement with tiny sizes. Not timed
// assertions; they assert what was answered and counted.
import { EventTypes } from '../events/index.ts';
import { aggregationOnce, numericLeaves } from './aggregation.ts';
import { ensureBuild } from './build.ts';
import { costVariants } from './cost.ts';
import { assignModels, driftStorm, generateCatalog } from './drift.ts';
import { startEmulatorProcess, startTarget, warmOnce } from './latency.ts';
import { reconcileTick } from './reconcile.ts';
import { TABLE_END, TABLE_START, replaceTable } from './report.ts';
import { scenarioRun } from './scenarios.ts';
import { quantile, summarize } from './stats.ts';

const root = process.cwd();

describe('bench harness', () => {
  let cluster: Awaited<ReturnType<typeof startEmulatorProcess>>;

  beforeAll(async () => {
    ensureBuild(root, ['start-training']);
    cluster = await startEmulatorProcess(root);
  }, 300_000);
  afterAll(async () => { await cluster.close(); });

  test('cold start: the echo answers with the event it got, the bundled start-training training.skipped (or 204 when unhandled)', async () => {
    for (const [target, type] of [['echo', EventTypes.trainingRequested], ['reads', EventTypes.trainingSkipped], ['start-training', EventTypes.trainingSkipped], ['start-training-unhandled', '']] as const) {
      const started = await startTarget(target, { root, cluster });
      try {
        expect(started.answeredType).toBe(type);
        expect(started.coldStartMs).toBeGreaterThan(0);
        expect(started.attempts).toBeGreaterThanOrEqual(1);
        expect(started.rssKiB).toBeGreaterThan(10_000); // a Node process is tens of MiB
      } finally {
        await started.stop();
      }
    }
  });

  test('warm latency: every sequential and concurrent request is answered with the expected event', async () => {
    for (const target of ['echo', 'reads', 'start-training', 'start-training-unhandled'] as const) {
      const s = await warmOnce(target, { root, cluster }, { warmup: 5, sequential: 20, concurrency: 4, concurrentRequests: 20 });
      expect(s).toMatchObject({ target, sequential: 20, concurrency: 4, concurrentRequests: 20 });
      expect(s.p99Ms).toBeGreaterThanOrEqual(s.p50Ms);
      expect(s.throughputPerSec).toBeGreaterThan(0);
    }
  });
});

test('drift storm: 20 alerts over 4 models → exactly 4 runs and NVJs, 16 explicit skips', async () => {
  const r = await driftStorm({ root, alerts: 20, models: 4, concurrency: 10 });
  expect(r).toMatchObject({ alerts: 20, models: 4, webhooksAccepted: 20, modelRuns: 4, notebookValidationJobs: 4, modelsWithOneRun: 4, started: 4, skipped: 16, deadLettered: 0 });
  expect(r.wallMs).toBeGreaterThanOrEqual(r.intakeMs);
});

test('the generated catalog has model-01..model-N copied from anomaly-detector; every model gets an alert', () => {
  const { catalog } = generateCatalog(root, 3);
  expect(catalog.models.map((m) => [m.name, m.inferenceService, m.profile, m.features.count])).toEqual([
    ['model-01', 'model-01', 'cpu', 45], ['model-02', 'model-02', 'cpu', 45], ['model-03', 'model-03', 'cpu', 45],
  ]);
  const assigned = assignModels(20, 4, 7);
  expect(assigned).toHaveLength(20);
  expect(new Set(assigned)).toEqual(new Set(['model-01', 'model-02', 'model-03', 'model-04']));
  expect(assignModels(20, 4, 7)).toEqual(assigned); // seeded
});

test('scenario run: training-fail ends Failed as expected, with the functions\' API calls counted per step', async () => {
  const r = await scenarioRun({ root, scenario: 'training-fail' });
  expect(r.phase).toBe('Failed');
  expect(r.expectedPhase).toBe('Failed');
  expect(r.events).toContain(EventTypes.trainingFailed);
  expect(Object.keys(r.apiCallsByStep)).toEqual(expect.arrayContaining(['start-training', 'track-training']));
  expect(r.apiCalls).toBe(Object.values(r.apiCallsByStep).reduce((s, n) => s + n, 0));
  expect(r.deliveries).toBeGreaterThan(0);
  // The trace the cost model reads: every delivery, the training that ran and failed, no Job or predictor pod.
  expect(r.trace.deliveries).toHaveLength(r.deliveries);
  expect(r.trace).toMatchObject({ trainingSucceeded: false, phase: 'Failed' });
  expect(r.trace.pods.filter((p) => p.kind === 'job')).toEqual([]);
  expect(r.trace.trainingEndMs).toBeGreaterThanOrEqual(r.trace.trainingStartMs ?? Infinity); // milliseconds: may tie
  const cost = costVariants(r.trace);
  expect(cost.ours.podsStarted).toMatchObject({ jobs: 0, training: 1 });
  expect(cost.ours.coldStartsByStep).toMatchObject({ 'start-training': 1, 'track-training': 2 }); // before and after training
  expect(cost.ours.trainingToConcludedMs).toBeUndefined();
  expect(cost.old).toMatchObject({ taskPods: 1, trainingToConcludedMs: undefined });
}, 120_000);

test('aggregation: argocd-sync recomputes the Application status over N NVJs with paginated lists', async () => {
  const r = await aggregationOnce(1_200);
  expect(r.status).toBe('measured');
  if (r.status !== 'measured') return;
  // 1,200 NVJs at 500 per page: three list calls, every NVJ counted.
  expect(r.figures).toMatchObject({ n: 1_200, listCalls: 3 });
  expect(Object.keys(numericLeaves(r.figures))).toEqual(expect.arrayContaining(['n', 'ms', 'listCalls', 'rssMb']));
});

test('watchdog tick: one get and one list per page of each resource, four more lists only while runs are in flight', async () => {
  // 20 models, 12 runs in flight (two in each unfinished phase): every list fits one page.
  const busy = await reconcileTick(root, { models: 20, unfinished: 12 });
  expect(busy).toMatchObject({ status: 204, gets: 1, lists: 6, writes: 0, listsByResource: { modelruns: 1, leases: 1, notebookvalidationjobs: 1, jobs: 1, inferenceservices: 1, pods: 1 } });
  // 600 models and no run in flight: the ModelRun list takes two pages (500 a page); the world is not read.
  const idle = await reconcileTick(root, { models: 600, unfinished: 0 });
  expect(idle).toMatchObject({ status: 204, gets: 1, lists: 3, writes: 0, eventsSent: 0, listsByResource: { modelruns: 2, leases: 1 } });
});

test('stats and the README table splice', () => {
  expect(summarize([5, 1, 3, 2, 4])).toEqual({ median: 3, min: 1, max: 5, runs: 5 });
  expect(quantile([0, 10], 0.99)).toBeCloseTo(9.9);
  expect(numericLeaves({ ms: 2, nested: { calls: 3, name: 'x' } })).toEqual({ ms: 2, 'nested.calls': 3 });
  const readme = `# B\n\ntext\n\n${TABLE_START}\nold\n${TABLE_END}\n\nafter\n`;
  expect(replaceTable(readme, 'new')).toBe(`# B\n\ntext\n\n${TABLE_START}\nnew\n${TABLE_END}\n\nafter\n`);
  expect(replaceTable('# B\n', 't')).toBe(`# B\n\n${TABLE_START}\nt\n${TABLE_END}\n`);
});
