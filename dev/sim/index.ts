// The simulated cluster controllers of `mlops dev` and the end-to-end tests: NVJ operator, Job runner,
// KServe predictor. They talk to the emulator's store in-process; writes notify watchers like HTTP writes.
import path from 'node:path';
import type { Logger } from 'pino';
import type { KubeObject, KubeVersion, Store } from '../emulator/index.ts';
import type { Catalog } from '../../runtime/catalog.ts';
import { startJobRunner } from './job-runner.ts';
import type { JobRunner } from './job-runner.ts';
import { startKServeSimulator } from './kserve.ts';
import type { KServeOptions, KServeSimulator } from './kserve.ts';
import { startNvjOperator } from './nvj-operator.ts';
import type { NvjOperator } from './nvj-operator.ts';
import { writeReferenceData } from './model-files.ts';
import { choosePython } from './python.ts';
import { expectedRuns, getScenario } from './scenarios.ts';
import type { ExpectedRun, Scenario } from './scenarios.ts';
import { pvcDir } from './volumes.ts';

export { pythonWithSklearn, choosePython, plainPython } from './python.ts';
export type { PythonChoice } from './python.ts';
export { ScenarioNames, Scenarios, TRAINING_FAIL_MESSAGE, expectedRuns, getScenario, isScenarioName, scenarioCatalog, withBaseline } from './scenarios.ts';
export type { ExpectedPhase, ExpectedRun, PredictorBehaviour, Scenario, ScenarioName, TrainingBehaviour } from './scenarios.ts';
export { pvcDir, resolveMounts, localPathFor, rewriteEnv } from './volumes.ts';
export type { ResolvedMount, PodSpecLike } from './volumes.ts';
export { startNvjOperator, SIMULATED_ANNOTATION, NVJ_MODEL_MOUNT } from './nvj-operator.ts';
export type { NvjOperator, NvjOperatorOptions } from './nvj-operator.ts';
export { startJobRunner, jobPodLabels, MAX_PARALLEL_JOBS } from './job-runner.ts';
export type { JobRunner, JobRunnerOptions } from './job-runner.ts';
export { startKServeSimulator, modelFileFor, ISVC_LABEL, PREDICTOR_CONTAINER, RolloutModes, isRolloutMode, DEFAULT_DRAIN_SECONDS, KUBELET_FINALIZER } from './kserve.ts';
export type { KServeOptions, KServeSimulator, PredictorPodInfo, RolloutMode, PodState } from './kserve.ts';
export { STANDIN_MAGIC, isStandin, parseStandin, standinPredict, standinProbeRows } from './standin.ts';
export { standinGateReport } from './gate-standin.ts';

export interface SimulatorsOptions {
  store: Store;
  /** Root of the simulated PVCs (`<stateDir>/pvc/<claim>`). */
  stateDir: string;
  namespace: string;
  catalog: Catalog;
  scenario: Scenario | string;
  /** `dev` allows the simulated gate report where sklearn is missing; `test` never does. */
  mode: 'dev' | 'test';
  python?: string;
  /** false: behave as on a machine without sklearn (stand-in model, stand-in predictions). */
  sklearn?: boolean;
  logger?: Logger;
  delayMs?: number;
  seedReleases?: boolean;
  /** Job pod labels as this Kubernetes version sets them. */
  kubeVersion?: KubeVersion;
  /** Admission of the pods the Job controller creates (the emulator's Pod Security). */
  admitPod?: (pod: KubeObject) => void;
  /** KServe rollout emulation (see kserve.ts). */
  rollout?: KServeRolloutOptions;
  /** The local S3 server, for `s3://` storageUris (see kserve.ts). */
  s3?: KServeOptions['s3'];
}

export type KServeRolloutOptions = Pick<KServeOptions, 'rollout' | 'drainSeconds' | 'readyDelaySeconds' | 'restartOnce'>;

export interface Simulators {
  scenario: Scenario;
  /** Terminal phase and event types per model for one run of each. */
  expected: Record<string, ExpectedRun>;
  /** True when this machine's runs use stand-ins (no sklearn). */
  simulated: boolean;
  python: string;
  nvj: NvjOperator;
  jobs: JobRunner;
  kserve: KServeSimulator;
  settled(): Promise<void>;
  close(): Promise<void>;
}

export async function startSimulators(opts: SimulatorsOptions): Promise<Simulators> {
  const scenario = typeof opts.scenario === 'string' ? getScenario(opts.scenario) : opts.scenario;
  const py = await choosePython(opts);
  const common = { store: opts.store, stateDir: opts.stateDir, namespace: opts.namespace, python: py.python, sklearn: py.sklearn, ...(opts.logger ? { logger: opts.logger } : {}) };
  // The reference data the gate compares on is on the PVC before the first run, as the install step puts it
  // there (README, docs/gate.md), so writing it never counts against a run's (shortened) training deadline.
  if (py.sklearn) {
    await Promise.all(opts.catalog.models.flatMap((m) => (m.referenceData
      ? [writeReferenceData({ features: m.features.count, output: m.output, outPath: path.join(pvcDir(opts.stateDir, m.storage.pvc), m.referenceData.path) }, py)]
      : [])));
  }
  const nvj = await startNvjOperator({ ...common, scenario, catalog: opts.catalog, ...(opts.delayMs !== undefined ? { delayMs: opts.delayMs } : {}) });
  const jobs = await startJobRunner({
    ...common, mode: opts.mode,
    ...(opts.kubeVersion ? { kubeVersion: opts.kubeVersion } : {}),
    ...(opts.admitPod ? { admitPod: opts.admitPod } : {}),
  });
  let kserve: KServeSimulator;
  try {
    kserve = await startKServeSimulator({ ...common, catalog: opts.catalog, scenario, ...(opts.seedReleases !== undefined ? { seedReleases: opts.seedReleases } : {}), ...opts.rollout, ...(opts.s3 ? { s3: opts.s3 } : {}) });
  } catch (err) {
    await Promise.all([nvj.close(), jobs.close()]);
    throw err;
  }
  return {
    scenario,
    expected: expectedRuns(scenario, opts.catalog),
    simulated: !py.sklearn,
    python: py.python,
    nvj,
    jobs,
    kserve,
    async settled() {
      await Promise.all([nvj.settled(), jobs.settled(), kserve.settled()]);
    },
    async close() {
      await Promise.all([nvj.close(), jobs.close(), kserve.close()]);
    },
  };
}
