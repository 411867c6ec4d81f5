// The real-cluster cost model on hand-made traces: exact figures, worked out by hand in the comments.
import { DEFAULT_POD_MODEL, LONG_JOB_WORK_MS, costVariants, modelOldDesign, modelRun, type RunTrace } from './cost.ts';

const d = (step: string, startMs: number, endMs: number): RunTrace['deliveries'][number] => ({ step, startMs, endMs });
// start-training takes the lock; track-training and argocd-sync see the NVJ start; training 300 → 1000 ms; then
// track-training, gate-health (creates the gate Job), the gate pod 1250 → 1500, gate-health reads the verdict.
const trace: RunTrace = {
  deliveries: [
    d('start-training', 0, 50), d('track-training', 100, 120), d('track-training', 200, 220), d('argocd-sync', 210, 230),
    d('track-training', 1100, 1120), d('gate-health', 1200, 1240), d('gate-health', 1600, 1650),
  ],
  pods: [{ kind: 'job', name: 'm-abc-gate-x1', startMs: 1250, endMs: 1500 }],
  trainingStartMs: 300, trainingEndMs: 1000, trainingSucceeded: true, concludedMs: 2000, phase: 'Rejected',
};

test('cold starts: the first call of each Service, and the first after training; calls within the window are warm', () => {
  const c = modelRun(trace);
  expect(c.coldStartsByStep).toEqual({ 'start-training': 1, 'track-training': 2, 'argocd-sync': 1, 'gate-health': 1 });
  expect(c.coldStarts).toBe(5);
  expect(c.invocations).toBe(7);
  expect(c.podsStarted).toEqual({ functions: 5, jobs: 1, predictors: 0, training: 1, total: 7 });
  // After training: track-training cold (+4 s), gate-health cold (+4 s), the gate pod starts (+5 s), local 1000 ms.
  expect(c.trainingToConcludedMs).toBe(1_000 + 4_000 + 4_000 + 5_000);
});

test('pod-seconds: each function pod from its cold start to its last answer plus the window; Job pods start + work', () => {
  const c = modelRun(trace);
  // Modeled clock: +4 s at each cold start (0, 100, 210, 1100, 1200), +5 s at the training pod (300), +30 min at the
  // training's end (1000), +5 s at the gate pod (1250); an answer takes its own time plus its cold start. A pod runs
  // from its cold start to its last answer: start-training 0→4050, track-training 4100→8220 and 1818100→1822120,
  // argocd-sync 8210→12230, gate-health 1822200→1831650; each then kept 90 s. The gate pod: 5 s start + 250 ms work.
  const fn = 4_050 + 4_120 + 4_020 + 4_020 + 9_450 + 5 * 90_000;
  expect(c.podSeconds).toBeCloseTo((fn + 5_250) / 1000, 6);
  // With no training time the second track-training call falls within the window: one pod, four cold starts.
  expect(modelRun(trace, { ...DEFAULT_POD_MODEL, trainingMs: 0 }).coldStartsByStep['track-training']).toBe(1);
});

test('overlapping calls of one Service share its pod', () => {
  const c = modelRun({ ...trace, deliveries: [d('notify', 0, 500), d('notify', 100, 200), d('notify', 400, 450)] });
  expect(c.coldStartsByStep).toEqual({ notify: 1 });
});

test('long Jobs push a second call past the window; warm steps keep it warm and hold pods longer', () => {
  const v = costVariants(trace);
  expect(v.ours.coldStarts).toBe(5);
  expect(v.longJobs.coldStartsByStep['gate-health']).toBe(2); // 120 s of gate work > the 90 s window
  expect(v.longJobsWarm.coldStartsByStep['gate-health']).toBe(1);
  expect(v.warm.coldStarts).toBe(5); // the first call after training is cold whatever the delay
  // Warm steps hold each pod of a warm step (track-training ×2, argocd-sync, gate-health) 10 min longer.
  expect(v.warm.podSeconds - v.ours.podSeconds).toBeCloseTo(4 * 600, 6);
  expect(v.longJobs.trainingToConcludedMs! - v.ours.trainingToConcludedMs!).toBe(LONG_JOB_WORK_MS + 4_000);
});

test('old design: a waiter pod for the whole training, a task pod per step the run reached, no functions', () => {
  const o = modelOldDesign(trace);
  // waiter (5 s + 30 min) and health-check (5 s + the gate pod's 250 ms); no restart/test after a rejection.
  expect(o).toEqual({ podsStarted: 3, taskPods: 2, podSeconds: (5_000 + 1_800_000 + 5_000 + 250) / 1000, trainingToConcludedMs: 5_250, standingPods: 1 });
  const failed = modelOldDesign({ ...trace, trainingSucceeded: false, deliveries: trace.deliveries.slice(0, 4), pods: [] });
  expect(failed).toMatchObject({ taskPods: 1, trainingToConcludedMs: undefined });
});
