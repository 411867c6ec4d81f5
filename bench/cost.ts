// What a run would cost on a real cluster, from what one local run really did (its broker deliveries, the pods the
// simulated Job controller and KServe started, when training ended and when the run concluded) and a stated pod-start
// model with published figures (bench/README.md, "What a real cluster would pay"). Pure: no I/O, no clock.
import { DEFAULT_SCALE_DOWN_DELAY, WARM_STEPS, parseScaleDownDelay } from '../config/warmsteps.ts';

/** One function invocation: a broker delivery to a step's Service, local milliseconds since the run's first event. */
export interface TracedDelivery {
  step: string;
  startMs: number;
  endMs: number;
}

/** A pod the run made a controller start: a Job's pod (copy, gate, promote, rollback) or a predictor pod. */
export interface TracedPod {
  kind: 'job' | 'predictor';
  name: string;
  startMs: number;
  /** Job pods: when the pod reached Succeeded/Failed. */
  endMs?: number;
}

/** What one local run really did, as counted from the emulator, the broker and the simulated controllers. */
export interface RunTrace {
  deliveries: TracedDelivery[];
  pods: TracedPod[];
  /** The training pod's start (NVJ first ValidationRunning) and the NVJ's terminal phase. */
  trainingStartMs?: number;
  trainingEndMs?: number;
  trainingSucceeded: boolean;
  /** The ModelRun's terminal phase. */
  concludedMs: number;
  phase: string;
}

/** The stated model. Every figure is a published one (sources in bench/README.md) or an assumption named as such. */
export interface PodModel {
  /** Knative cold start of a function (scale from zero → first answer). */
  coldStartMs: number;
  /** A Job pod's start (creation → containers started). */
  jobPodStartMs: number;
  /** A predictor pod's start (creation → containers started; model loading is in the measured run). */
  predictorPodStartMs: number;
  /** The old design's per-task pod overhead. */
  taskPodStartMs: number;
  /** How long a function pod stays after its last request: Knative's stable window plus the scale-to-zero grace. */
  scaleToZeroAfterMs: number;
  /** Training time (assumption; only the old design's waiter pod-seconds depend on it). */
  trainingMs: number;
  /** Added to every Job's measured work (0 = as measured here on small models; e.g. 120 s for a gate on real data). */
  extraJobWorkMs: number;
}

export const DEFAULT_POD_MODEL: PodModel = {
  // knative/serving docs/roadmap/scaling-2019.md: "about 4 seconds" without the mesh; a pod start alone is ~2 s on
  // an idle cluster (knative/serving#2484).
  coldStartMs: 4_000,
  // Kubernetes SIG Scalability pod startup SLO: p99 ≤ 5 s for stateless pods, image pulls excluded.
  jobPodStartMs: 5_000,
  predictorPodStartMs: 5_000,
  // The old design's figure, about 5 s per Tekton task pod (the same SLO bound).
  taskPodStartMs: 5_000,
  // Knative stable window 60 s (the last replica goes after no traffic for the whole window) + scale-to-zero grace
  // period up to 30 s (knative docs serving/autoscaling scale-bounds.md, scale-to-zero.md).
  scaleToZeroAfterMs: 90_000,
  trainingMs: 30 * 60_000,
  extraJobWorkMs: 0,
};

/** The warm-steps opt-in (`mlops render --warm-steps`): these Services keep their pod this much longer. */
export interface WarmSteps {
  steps: readonly string[];
  scaleDownDelayMs: number;
}

export interface RunCost {
  /** Function pods started (one per cold start), Job pods, predictor pods, the training pod. */
  podsStarted: { functions: number; jobs: number; predictors: number; training: number; total: number };
  invocations: number;
  coldStarts: number;
  coldStartsByStep: Record<string, number>;
  /** Pod-seconds of function and Job pods (the training pod and the serving predictor pods excluded). */
  podSeconds: number;
  /** Training finished → the run's terminal phase, on the modeled clock; undefined when training did not succeed. */
  trainingToConcludedMs: number | undefined;
}

/**
 * Replays the run on a modeled clock: every pod start the run caused and every cold start delays what follows by
 * the model's figure, the training takes `trainingMs`. An invocation is cold when its Service had no invocation in
 * the run yet, or none within `scaleToZeroAfterMs` (+ the scale-down delay for warm steps) before it. Pods are held
 * from their cold start to their last answer plus that window. Concurrent work is delayed as if it were serial, so
 * the modeled latency is an upper bound.
 */
export function modelRun(trace: RunTrace, model: PodModel = DEFAULT_POD_MODEL, warm?: WarmSteps): RunCost {
  const insertions: Array<{ atMs: number; ms: number }> = [];
  const at = (t: number): number => t + insertions.reduce((s, i) => (i.atMs <= t ? s + i.ms : s), 0);
  const holdFor = (step: string): number => model.scaleToZeroAfterMs + (warm?.steps.includes(step) ? warm.scaleDownDelayMs : 0);

  type Item = { t: number; order: number; run(): void };
  const items: Item[] = [];
  const lastEndAt = new Map<string, number>(); // modeled time of the step's latest answer
  const pods = new Map<string, { beganAt: number; lastEndAt: number }[]>(); // modeled
  const coldStartsByStep: Record<string, number> = {};
  let jobPodMs = 0;

  // Work happens between a pod's start and its end: the pod start delays what follows its creation, the modeled
  // work (training, extra Job work) what follows its end, so invocations during the work stay where they were.
  if (trace.trainingStartMs !== undefined) {
    const t = trace.trainingStartMs;
    items.push({ t, order: 0, run: () => { insertions.push({ atMs: t, ms: model.jobPodStartMs }); } });
  }
  if (trace.trainingEndMs !== undefined) {
    const t = trace.trainingEndMs;
    items.push({ t, order: 0, run: () => { insertions.push({ atMs: t, ms: model.trainingMs }); } });
  }
  for (const p of trace.pods) {
    const startMs = p.startMs;
    items.push({ t: startMs, order: 0, run: () => { insertions.push({ atMs: startMs, ms: p.kind === 'predictor' ? model.predictorPodStartMs : model.jobPodStartMs }); } });
    if (p.kind !== 'job') continue;
    const endMs = p.endMs ?? startMs;
    jobPodMs += model.jobPodStartMs + model.extraJobWorkMs + Math.max(0, endMs - startMs);
    if (model.extraJobWorkMs > 0) items.push({ t: endMs, order: 0, run: () => { insertions.push({ atMs: endMs, ms: model.extraJobWorkMs }); } });
  }
  const deliveries = [...trace.deliveries].sort((a, b) => a.startMs - b.startMs);
  for (const d of deliveries) {
    items.push({
      t: d.startMs, order: 1, run: () => {
        // Every insertion before this start is placed (items run in local time order), so its modeled start is final.
        // An answer takes as long as it took here (plus its cold start): work elsewhere does not stretch it.
        const startAt = at(d.startMs);
        const prevEndAt = lastEndAt.get(d.step);
        const instances = pods.get(d.step) ?? [];
        const busy = prevEndAt !== undefined && prevEndAt >= startAt; // an earlier call is still being answered
        const cold = !busy && (prevEndAt === undefined || startAt - prevEndAt > holdFor(d.step));
        if (cold) {
          coldStartsByStep[d.step] = (coldStartsByStep[d.step] ?? 0) + 1;
          insertions.push({ atMs: d.startMs, ms: model.coldStartMs });
          instances.push({ beganAt: startAt, lastEndAt: startAt });
        }
        const endAt = startAt + (cold ? model.coldStartMs : 0) + (d.endMs - d.startMs);
        const current = instances[instances.length - 1];
        if (current) current.lastEndAt = Math.max(current.lastEndAt, endAt);
        pods.set(d.step, instances);
        lastEndAt.set(d.step, Math.max(prevEndAt ?? endAt, endAt));
      },
    });
  }
  items.sort((a, b) => a.t - b.t || a.order - b.order);
  for (const item of items) item.run();

  let functionPodMs = 0;
  for (const [step, instances] of pods) for (const i of instances) functionPodMs += i.lastEndAt - i.beganAt + holdFor(step);
  const coldStarts = Object.values(coldStartsByStep).reduce((s, n) => s + n, 0);
  const jobs = trace.pods.filter((p) => p.kind === 'job').length;
  const predictors = trace.pods.filter((p) => p.kind === 'predictor').length;
  const training = trace.trainingStartMs !== undefined ? 1 : 0;
  return {
    podsStarted: { functions: coldStarts, jobs, predictors, training, total: coldStarts + jobs + predictors + training },
    invocations: trace.deliveries.length,
    coldStarts, coldStartsByStep,
    podSeconds: (functionPodMs + jobPodMs) / 1000,
    trainingToConcludedMs: trace.trainingSucceeded && trace.trainingEndMs !== undefined ? at(trace.concludedMs) - at(trace.trainingEndMs) : undefined,
  };
}

/**
 * The design this replaces, modeled explicitly (it cannot be run here): an always-on Tekton EventListener pod, and
 * per run a pipeline of task pods — train (a waiter held for the whole training), health-check, restart, test —
 * each paying `taskPodStartMs`, doing the same work as the measured run's counterpart (the gate Job's pod time for
 * health-check, the promote Job's for restart, verify-endpoint's answers for test). Its steps run only as far as the
 * run got: no health-check after a failed training, no restart after a rejection, no rollback.
 */
export interface OldDesignCost {
  podsStarted: number;
  taskPods: number;
  podSeconds: number;
  trainingToConcludedMs: number | undefined;
  /** Always-on pods (the EventListener), whatever the number of runs. */
  standingPods: number;
}

export function modelOldDesign(trace: RunTrace, model: PodModel = DEFAULT_POD_MODEL): OldDesignCost {
  const jobWork = (suffix: string): number => trace.pods
    .filter((p) => p.kind === 'job' && p.name.includes(suffix))
    .reduce((s, p) => s + Math.max(0, (p.endMs ?? p.startMs) - p.startMs) + model.extraJobWorkMs, 0);
  const verifyMs = trace.deliveries.filter((d) => d.step === 'verify-endpoint').reduce((s, d) => s + d.endMs - d.startMs, 0);
  const gated = trace.deliveries.some((d) => d.step === 'gate-health');
  const restarted = trace.pods.some((p) => p.kind === 'job' && p.name.includes('-promote'));
  const tasks: number[] = [model.taskPodStartMs + model.trainingMs]; // the waiter: held for the whole training
  if (trace.trainingSucceeded && gated) tasks.push(model.taskPodStartMs + jobWork('-gate'));
  if (restarted) tasks.push(model.taskPodStartMs + jobWork('-promote'), model.taskPodStartMs + verifyMs);
  const predictorPath = restarted ? model.predictorPodStartMs : 0;
  const afterTraining = tasks.slice(1).reduce((s, ms) => s + ms, 0) + predictorPath;
  return {
    podsStarted: tasks.length + 1 + trace.pods.filter((p) => p.kind === 'predictor').length, // + the training pod
    taskPods: tasks.length,
    podSeconds: tasks.reduce((s, ms) => s + ms, 0) / 1000,
    trainingToConcludedMs: trace.trainingSucceeded ? afterTraining : undefined,
    standingPods: 1,
  };
}

/** Gate or promote work on real data sets takes minutes, not the seconds measured here on small models. */
export const LONG_JOB_WORK_MS = 120_000;

export interface CostVariants {
  ours: RunCost;
  /** `mlops render --warm-steps` (config/warmsteps.ts) with its default delay. */
  warm: RunCost;
  /** Every Job's work + LONG_JOB_WORK_MS, without and with warm steps. */
  longJobs: RunCost;
  longJobsWarm: RunCost;
  old: OldDesignCost;
  oldLongJobs: OldDesignCost;
}

export function costVariants(trace: RunTrace, model: PodModel = DEFAULT_POD_MODEL): CostVariants {
  const warm: WarmSteps = { steps: WARM_STEPS, scaleDownDelayMs: parseScaleDownDelay(DEFAULT_SCALE_DOWN_DELAY) };
  const long: PodModel = { ...model, extraJobWorkMs: LONG_JOB_WORK_MS };
  return {
    ours: modelRun(trace, model), warm: modelRun(trace, model, warm),
    longJobs: modelRun(trace, long), longJobsWarm: modelRun(trace, long, warm),
    old: modelOldDesign(trace, model), oldLongJobs: modelOldDesign(trace, long),
  };
}
