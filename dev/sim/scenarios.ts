// What the simulated controllers do in a scenario, and how each run should end. `mlops dev --scenario NAME`
// and the end-to-end tests pick one; `expected` is what they check the runs against.
import type { Catalog, CatalogModel } from '../../runtime/catalog.ts';
import { EventTypes } from '../../events/index.ts';
import type { EventType } from '../../events/index.ts';

export const ScenarioNames = ['happy-cpu', 'happy-gpu', 'gate-reject', 'training-fail', 'deadline', 'verify-fail-rollback', 'rollback-fails', 'baseline-regression', 's3'] as const;
export type ScenarioName = (typeof ScenarioNames)[number];

export const TrainingBehaviours = {
  /** The notebook trains and writes a real (or stand-in) model. */
  ok: 'ok',
  /** The notebook succeeds but writes a pickled dict: the gate must reject it. */
  badModel: 'bad-model',
  /** The notebook fails. */
  fail: 'fail',
  /** The notebook writes a model that loads and predicts the right shape but is clearly worse than the served one. */
  worseModel: 'worse-model',
  /** The validation pod never finishes (phase stays Running): the watchdog's deadline ends the run. */
  hang: 'hang',
} as const;
export type TrainingBehaviour = (typeof TrainingBehaviours)[keyof typeof TrainingBehaviours];

export const PredictorBehaviours = {
  ok: 'ok',
  /** Pods of any release but the first one served predict wrong values; the rollback restores a good one. */
  wrongAfterFirst: 'wrong-after-first',
  /**
   * As wrong-after-first, and the pods a rollback starts for the first release come up without their model (its
   * release folder is gone): they report Ready and answer "model does not exist", so the restored release fails.
   */
  restoreBroken: 'restore-broken',
} as const;
export type PredictorBehaviour = (typeof PredictorBehaviours)[keyof typeof PredictorBehaviours];

export type ExpectedPhase = 'Succeeded' | 'Rejected' | 'Failed' | 'RolledBack';

export interface ExpectedRun {
  phase: ExpectedPhase;
  /** The CloudEvent types of the run, in order. */
  events: EventType[];
  /** Checks the gate must have failed (a subset of status.gate.checks that are not ok). */
  failedChecks?: string[];
  /** The release served before the run must still be served after it. */
  keepsServed?: boolean;
  /** A rollback's check of the restored release (status.rollback.verified): it answered, or it did not. */
  rollback?: 'verified' | 'unverified';
  /**
   * A model served from the bucket: afterwards its storageUri must name the run's release folder (`release`) or
   * the one served before the run (`previous`, after a rollback).
   */
  storageUri?: 'release' | 'previous';
}

export interface Scenario {
  name: ScenarioName;
  description: string;
  training: TrainingBehaviour;
  trainingFailMessage: string;
  predictor: PredictorBehaviour;
  /** The training profile runs should request (`mlops dev` passes it on `training.requested`); undefined = catalog. */
  profile?: 'cpu' | 'gpu';
  /**
   * Serve a release before the first run (promoted with the real promote.py), so a failed verification has
   * something to roll back to.
   */
  seedRelease: boolean;
  /** Gate against the served release with the catalog defaults of docs/gate.md (reference data on the PVC). */
  baseline?: boolean;
  /** Models this scenario serves from the local bucket (catalog `storage.kind: s3`, docs/storage.md). */
  s3Models?: readonly string[];
  /** A predictor behaviour for one model instead of the scenario's. */
  predictorByModel?: Readonly<Record<string, PredictorBehaviour>>;
}

export const TRAINING_FAIL_MESSAGE = 'Notebook execution failed: cell 7 raised ValueError';

const base = { trainingFailMessage: TRAINING_FAIL_MESSAGE, predictor: PredictorBehaviours.ok, seedRelease: false } as const;

export const Scenarios: Record<ScenarioName, Scenario> = {
  'happy-cpu': { ...base, name: 'happy-cpu', description: 'every model trains on CPU, passes the gate and is verified', training: 'ok', profile: 'cpu' },
  'happy-gpu': { ...base, name: 'happy-gpu', description: 'every model trains on GPU, is copied, gated and verified', training: 'ok', profile: 'gpu' },
  'gate-reject': { ...base, name: 'gate-reject', description: 'the notebook writes a pickled dict; the gate rejects it', training: 'bad-model' },
  'training-fail': { ...base, name: 'training-fail', description: 'the notebook fails in cell 7', training: 'fail' },
  deadline: { ...base, name: 'deadline', description: 'the validation pod never finishes; the watchdog fails the run', training: 'hang' },
  'verify-fail-rollback': {
    ...base,
    name: 'verify-fail-rollback',
    description: 'the new predictor answers wrong; the previous release is restored',
    training: 'ok',
    predictor: PredictorBehaviours.wrongAfterFirst,
    seedRelease: true,
  },
  'rollback-fails': {
    ...base,
    name: 'rollback-fails',
    description: 'the new predictor answers wrong; the previous release is restored but its new pods serve no model: the run fails loudly',
    training: 'ok',
    predictor: PredictorBehaviours.restoreBroken,
    seedRelease: true,
  },
  'baseline-regression': {
    ...base,
    name: 'baseline-regression',
    description: 'a good release is served; the notebook writes a clearly worse model; the baseline checks reject it and the good one stays served',
    training: 'worse-model',
    seedRelease: true,
    baseline: true,
  },
  s3: {
    ...base,
    name: 's3',
    description: 'both models are served from the bucket: the storage bootstrap uploads placeholders, anomaly-detector promotes a release to the bucket and is verified; predictive-analytics answers wrong and its storageUri goes back to the placeholder release',
    training: 'ok',
    s3Models: ['anomaly-detector', 'predictive-analytics'],
    predictorByModel: { 'predictive-analytics': PredictorBehaviours.wrongAfterFirst },
  },
};

/** The predictor behaviour of one model in a scenario. */
export function predictorOfModel(scenario: Scenario, model: string): PredictorBehaviour {
  return scenario.predictorByModel?.[model] ?? scenario.predictor;
}

/** The docs/gate.md defaults of the shipped catalog: reference data on the model's PVC and thresholds against the served release. */
export function withBaseline(model: CatalogModel): CatalogModel {
  const baseline = model.output.kind === 'label'
    ? { minAgreement: 0.9, maxRateChange: 0.1, maxMetricRegression: 0.1 }
    : { maxRelativeChange: 0.5, maxMetricRegression: 0.5 };
  return { ...model, referenceData: { path: `reference/${model.name}.npz` }, gate: { ...model.gate, baseline } };
}

/**
 * The catalog as a scenario runs it: the baseline scenario configures the comparison for every model that has
 * none. Without sklearn (`sklearn: false`) the other scenarios run without `gate.baseline`: the stand-in
 * notebook writes no reference data and the stand-in gate cannot compare models, so every run would be
 * rejected for missing evidence; the baseline scenario keeps it and expects exactly that rejection.
 */
export function scenarioCatalog(scenario: Scenario, catalog: Catalog, opts: { sklearn?: boolean } = {}): Catalog {
  if (scenario.s3Models?.length) {
    const names = scenario.s3Models;
    const inBucket = { ...catalog, models: catalog.models.map((m) => (names.includes(m.name) ? { ...m, storage: { ...m.storage, kind: 's3' as const } } : m)) };
    return scenarioCatalog({ ...scenario, s3Models: [] }, inBucket, opts);
  }
  if (scenario.baseline) return { ...catalog, models: catalog.models.map((m) => (m.gate.baseline ? m : withBaseline(m))) };
  if (opts.sklearn === false && catalog.models.some((m) => m.gate.baseline)) {
    return {
      ...catalog,
      models: catalog.models.map((m) => {
        const gate = { ...m.gate };
        delete gate.baseline;
        return { ...m, gate };
      }),
    };
  }
  return catalog;
}

export function isScenarioName(name: string): name is ScenarioName {
  return (ScenarioNames as readonly string[]).includes(name);
}

export function getScenario(name: string): Scenario {
  if (!isScenarioName(name)) throw new Error(`unknown scenario ${JSON.stringify(name)} (known: ${ScenarioNames.join(', ')})`);
  return Scenarios[name];
}

/** Terminal ModelRun phase and event types per model for one run of each catalog model. */
export function expectedRuns(scenario: Scenario, catalog: Catalog): Record<string, ExpectedRun> {
  const out: Record<string, ExpectedRun> = {};
  for (const model of catalog.models) {
    if (!model.enabled) continue;
    const gpu = (scenario.profile ?? model.profile) === 'gpu';
    const started = [EventTypes.trainingRequested, EventTypes.trainingStarted];
    const trained = [...started, EventTypes.trainingSucceeded, ...(gpu ? [EventTypes.modelCopied] : [])];
    const restarted = [...trained, EventTypes.modelApproved, EventTypes.predictorRestarted];
    const predictor = predictorOfModel(scenario, model.name);
    // A bucket model always has a previous release to go back to: the placeholder the storage bootstrap uploaded.
    const bucket = model.storage.kind === 's3' || (scenario.s3Models ?? []).includes(model.name);
    switch (scenario.training) {
      case 'fail':
        out[model.name] = { phase: 'Failed', events: [...started, EventTypes.trainingFailed] };
        break;
      case 'hang':
        out[model.name] = { phase: 'Failed', events: [...started, EventTypes.runFailed] };
        break;
      case 'bad-model':
        out[model.name] = { phase: 'Rejected', events: [...trained, EventTypes.modelRejected] };
        break;
      case 'worse-model':
        out[model.name] = { phase: 'Rejected', events: [...trained, EventTypes.modelRejected], failedChecks: ['baseline-metrics'], keepsServed: true };
        break;
      case 'ok':
        if (predictor === 'restore-broken') {
          // The restored release does not answer: run.failed (rollback-unverified), nothing else changed.
          out[model.name] = { phase: 'Failed', events: [...restarted, EventTypes.deploymentFailed, EventTypes.runFailed], rollback: 'unverified' };
          break;
        }
        out[model.name] = predictor === 'wrong-after-first'
          ? { phase: scenario.seedRelease || bucket ? 'RolledBack' : 'Failed', events: [...restarted, EventTypes.deploymentFailed, EventTypes.deploymentRolledback], ...(scenario.seedRelease || bucket ? { rollback: 'verified' as const } : {}), ...(bucket ? { storageUri: 'previous' as const } : {}) }
          : { phase: 'Succeeded', events: [...restarted, EventTypes.deploymentVerified], ...(bucket ? { storageUri: 'release' as const } : {}) };
        break;
    }
  }
  return out;
}
