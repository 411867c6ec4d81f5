// The CloudEvent types we emit, their extension attribute names and their `data` schemas.
import { z } from 'zod';
import {
  CommitSha,
  DataSource,
  GitRef,
  hasControlChars,
  IsoTime,
  K8sName,
  Message,
  ModelName,
  NotebookPath,
  Profile,
  RunName,
  Sha256,
  Trigger,
} from './names.ts';
import { CHECK_NAME_MAX, PROVENANCE_FIELD_MAX, PROVENANCE_TEXT_MAX, REASON_MAX, REQUESTED_BY_MAX, URL_MAX } from './text.ts';

export const EventTypes = {
  trainingRequested: 'dev.mlops.training.requested.v1',
  trainingStarted: 'dev.mlops.training.started.v1',
  trainingSkipped: 'dev.mlops.training.skipped.v1',
  trainingSucceeded: 'dev.mlops.training.succeeded.v1',
  trainingFailed: 'dev.mlops.training.failed.v1',
  modelCopied: 'dev.mlops.model.copied.v1',
  modelApproved: 'dev.mlops.model.approved.v1',
  modelRejected: 'dev.mlops.model.rejected.v1',
  predictorRestarted: 'dev.mlops.predictor.restarted.v1',
  deploymentVerified: 'dev.mlops.deployment.verified.v1',
  deploymentFailed: 'dev.mlops.deployment.failed.v1',
  deploymentRolledback: 'dev.mlops.deployment.rolledback.v1',
  runFailed: 'dev.mlops.run.failed.v1',
  /** The watchdog's "look at this run again" (docs/run-lifecycle.md): carries no facts, only whom to wake. */
  runReconcile: 'dev.mlops.run.reconcile.v1',
  /** ADR-023 storage bootstrap (docs/storage.md "Bootstrap"): asked for, and its outcome. */
  storageBootstrapRequested: 'dev.mlops.storage.bootstrap.requested.v1',
  storageValidated: 'dev.mlops.storage.validated.v1',
  storageFailed: 'dev.mlops.storage.failed.v1',
} as const;
export type EventTypeKey = keyof typeof EventTypes;
export type EventType = (typeof EventTypes)[EventTypeKey];

export const ALL_EVENT_TYPES: readonly EventType[] = Object.values(EventTypes);

export function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (ALL_EVENT_TYPES as readonly string[]).includes(value);
}

/** CloudEvent extension attribute names (must match `[a-z0-9]+`); Triggers filter on them. */
export const Extensions = {
  model: 'model',
  run: 'run',
  profile: 'profile',
  traceparent: 'traceparent',
  /** The step a `run.reconcile` is for (its Trigger filters on it). */
  target: 'target',
} as const;

export const SOURCE_PREFIX = '/model-lifecycle/';

export function sourceOf(step: string): string {
  return `${SOURCE_PREFIX}${step}`;
}

/** `dev.mlops.training.requested.v1` → `training.requested`. */
export function nounVerbOf(type: EventType): string {
  return type.slice('dev.mlops.'.length, -'.v1'.length);
}

const Text = z.string().max(PROVENANCE_FIELD_MAX);
const Url = z.string().max(URL_MAX);

/** What fired a training request; every field optional, each source fills its own. */
export const Provenance = z
  .object({
    alertFingerprint: Text.optional(),
    alertName: Text.optional(),
    groupKey: z.string().max(PROVENANCE_TEXT_MAX).optional(),
    startsAt: Text.optional(),
    generatorURL: Url.optional(),
    commitSha: CommitSha.optional(),
    deliveryId: Text.optional(),
    pusher: Text.optional(),
    repository: Text.optional(),
    scheduleSlot: Text.optional(),
    pingSource: Text.optional(),
    pipelineRun: Text.optional(),
    pipelineRunUid: Text.optional(),
    eventSource: Url.optional(),
    eventId: Text.optional(),
    queuedFrom: RunName.optional(),
  })
  .strict();
export type Provenance = z.infer<typeof Provenance>;

export const TrainingRequested = z
  .object({
    model: ModelName,
    trigger: Trigger,
    dataSource: DataSource.optional(),
    trainingHours: z.int().min(1).max(8760).optional(),
    gitRef: GitRef.optional(),
    notebookPath: NotebookPath.optional(),
    profile: Profile.optional(),
    reason: z.string().max(REASON_MAX).optional(),
    requestedBy: z.string().max(REQUESTED_BY_MAX).optional(),
    /** `mlops train --force`: train a paused model anyway; honoured only from the CLI's manual requests (docs/day2.md). */
    force: z.boolean().optional(),
    provenance: Provenance.optional(),
  })
  .strict();
export type TrainingRequested = z.infer<typeof TrainingRequested>;

export const TrainingStarted = z
  .object({
    model: ModelName,
    run: RunName,
    trigger: Trigger,
    profile: Profile,
    notebookValidationJob: K8sName,
    startedAt: IsoTime,
    deadline: IsoTime,
  })
  .strict();
export type TrainingStarted = z.infer<typeof TrainingStarted>;

export const SkipReason = z.enum(['already-running', 'cooldown', 'queued', 'disabled', 'duplicate', 'paused']);
export type SkipReason = z.infer<typeof SkipReason>;

export const TrainingSkipped = z
  .object({
    model: ModelName,
    reason: SkipReason,
    message: Message,
    holder: RunName.optional(),
    run: RunName.optional(),
    /** reason `paused`: who paused the model and why (docs/day2.md). */
    pausedBy: z.string().max(REQUESTED_BY_MAX).optional(),
    pausedReason: z.string().max(REASON_MAX).optional(),
  })
  .strict();
export type TrainingSkipped = z.infer<typeof TrainingSkipped>;

/** A file path inside a volume: absolute or relative, but never walking up with "..". */
export const ArtifactPath = z
  .string()
  .min(1)
  .max(1024)
  .refine((p) => !p.split('/').includes('..') && !p.includes('\\') && !hasControlChars(p), {
    message: 'must not contain ".." segments, backslashes or control characters',
  });
export type ArtifactPath = z.infer<typeof ArtifactPath>;

export const TrainingSucceeded = z
  .object({
    model: ModelName,
    run: RunName,
    profile: Profile,
    completedAt: IsoTime,
    artifactPath: ArtifactPath,
    warning: Message.optional(),
  })
  .strict();
export type TrainingSucceeded = z.infer<typeof TrainingSucceeded>;

export const TrainingFailed = z
  .object({
    model: ModelName,
    run: RunName,
    profile: Profile,
    phase: z.string().min(1).max(64),
    message: Message,
  })
  .strict();
export type TrainingFailed = z.infer<typeof TrainingFailed>;

const Bytes = z.int().min(0);

export const ModelCopied = z
  .object({
    model: ModelName,
    run: RunName,
    path: ArtifactPath,
    bytes: Bytes,
    sha256: Sha256,
  })
  .strict();
export type ModelCopied = z.infer<typeof ModelCopied>;

export const GateCheck = z
  .object({
    name: z.string().min(1).max(CHECK_NAME_MAX),
    ok: z.boolean(),
    message: Message.optional(),
    observed: z.unknown().optional(),
  })
  .strict();
export type GateCheck = z.infer<typeof GateCheck>;

// Probe sizes are bounded so the approval event (which carries the rows) stays small.
const PROBE_ROWS_MAX = 256;
const PROBE_WIDTH_MAX = 4096;
const ProbeRow = z.array(z.number()).min(1).max(PROBE_WIDTH_MAX);

/** Seeded probe rows and the gate's outputs for them: a label per row, or a float array per row. */
export const Probe = z
  .object({
    rows: z.array(ProbeRow).min(1).max(PROBE_ROWS_MAX),
    expected: z.union([
      z.array(z.union([z.number(), z.string().max(256)])).max(PROBE_ROWS_MAX),
      z.array(ProbeRow).max(PROBE_ROWS_MAX),
    ]),
  })
  .strict()
  .superRefine((probe, ctx) => {
    if (probe.expected.length !== probe.rows.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['expected'],
        message: `must have one entry per probe row (${probe.rows.length}), got ${probe.expected.length}`,
      });
    }
    const width = probe.rows[0]?.length;
    const ragged = probe.rows.findIndex((row) => row.length !== width);
    if (ragged >= 0) {
      ctx.addIssue({ code: 'custom', path: ['rows', ragged], message: `every row must have ${width} features` });
    }
  });
export type Probe = z.infer<typeof Probe>;

export const ModelApproved = z
  .object({
    model: ModelName,
    run: RunName,
    path: ArtifactPath,
    bytes: Bytes,
    sha256: Sha256,
    simulated: z.boolean().optional(),
    checks: z.array(GateCheck).min(1).max(64),
    probe: Probe,
  })
  .strict()
  .superRefine((data, ctx) => {
    // An approval with a failed check would be a fail-open gate.
    const failed = data.checks.findIndex((c) => !c.ok);
    if (failed >= 0) ctx.addIssue({ code: 'custom', path: ['checks', failed, 'ok'], message: 'every check of an approval must be ok' });
  });
export type ModelApproved = z.infer<typeof ModelApproved>;

export const ModelRejected = z
  .object({
    model: ModelName,
    run: RunName,
    checks: z.array(GateCheck).max(64),
    failed: z.array(z.string().min(1).max(CHECK_NAME_MAX)).min(1).max(64),
    message: Message,
  })
  .strict()
  .superRefine((data, ctx) => {
    data.failed.forEach((name, i) => {
      const check = data.checks.find((c) => c.name === name);
      if (!check || check.ok) {
        ctx.addIssue({ code: 'custom', path: ['failed', i], message: `"${name}" must name a check with ok: false` });
      }
    });
  });
export type ModelRejected = z.infer<typeof ModelRejected>;

// Releases are run names, but the release a predictor served before our first promotion may be
// anything an operator put there, so "previous"/"restored" releases are free (bounded) text.
const Release = z.string().min(1).max(253);

export const PredictorRestarted = z
  .object({
    model: ModelName,
    run: RunName,
    release: RunName,
    previousRelease: Release.nullable(),
    inferenceService: K8sName,
    restartedAt: IsoTime,
  })
  .strict()
  .refine((d) => d.release === d.run, { path: ['release'], message: 'must equal run' });
export type PredictorRestarted = z.infer<typeof PredictorRestarted>;

export const DeploymentVerified = z
  .object({
    model: ModelName,
    run: RunName,
    release: Release,
    verifiedAt: IsoTime,
    pods: z.array(z.string().min(1).max(253)).max(1000),
    matched: z.int().min(0),
  })
  .strict();
export type DeploymentVerified = z.infer<typeof DeploymentVerified>;

export const DeploymentFailureReason = z.enum(['mismatch', 'http-error', 'model-missing', 'no-ready-pod', 'timeout']);
export type DeploymentFailureReason = z.infer<typeof DeploymentFailureReason>;

export const DeploymentFailed = z
  .object({
    model: ModelName,
    run: RunName,
    release: Release,
    reason: DeploymentFailureReason,
    message: Message,
  })
  .strict();
export type DeploymentFailed = z.infer<typeof DeploymentFailed>;

export const DeploymentRolledback = z
  .object({
    model: ModelName,
    run: RunName,
    failedRelease: Release,
    restoredRelease: Release.nullable(),
    message: Message,
  })
  .strict();
export type DeploymentRolledback = z.infer<typeof DeploymentRolledback>;

/** A run's steps as its ModelRun records them (`status.steps`, config/crds/modelrun.yaml; runtime/resources.ts). */
export const StepName = z.enum(['training', 'copy', 'gate', 'promote', 'verify', 'rollback']);
export type StepName = z.infer<typeof StepName>;

/** Where a run failed: one of its steps, or the watchdog. */
export const RunStep = z.enum([...StepName.options, 'watchdog']);
export type RunStep = z.infer<typeof RunStep>;

export const RunFailed = z
  .object({
    model: ModelName,
    run: RunName,
    step: RunStep,
    reason: z.string().min(1).max(128),
    message: Message,
  })
  .strict();
export type RunFailed = z.infer<typeof RunFailed>;

export const RunReconcile = z
  .object({
    model: ModelName,
    run: RunName,
    /**
     * The step to wake (it decides from the cluster, never from this event's data). Any step name: only the steps
     * that declare `reconcile` have a Trigger for it (functions/registry.ts), so another name reaches nobody.
     */
    target: K8sName,
    reason: z.string().min(1).max(256),
  })
  .strict();
export type RunReconcile = z.infer<typeof RunReconcile>;

/** `mlops bootstrap`: run the storage bootstrap now (it decides from the cluster, not from this data). */
export const StorageBootstrapRequested = z
  .object({
    requestedBy: z.string().min(1).max(REQUESTED_BY_MAX).optional(),
    reason: z.string().max(REASON_MAX).optional(),
  })
  .strict();
export type StorageBootstrapRequested = z.infer<typeof StorageBootstrapRequested>;

const BucketName = z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name');
const ObjectKey = z.string().min(1).max(1024).refine((k) => !hasControlChars(k), { message: 'must not contain control characters' });

export const StorageModelResult = z
  .object({
    model: ModelName,
    object: ObjectKey,
    /** `existing`: left as it was (never overwritten); `uploaded`: the placeholder this bootstrap put there. */
    placeholder: z.enum(['existing', 'uploaded']),
    inferenceService: K8sName,
    /** Prediction rows of the declared width answered by the predictor. */
    served: z.int().min(0),
  })
  .strict();
export type StorageModelResult = z.infer<typeof StorageModelResult>;

export const StorageValidated = z
  .object({
    bucket: BucketName,
    /** The endpoint's host (never credentials). */
    endpointHost: z.string().min(1).max(253),
    checkedAt: IsoTime,
    models: z.array(StorageModelResult).max(1000),
  })
  .strict();
export type StorageValidated = z.infer<typeof StorageValidated>;

/** Where the bootstrap stopped: nothing after the failing stage was done. */
export const StorageStage = z.enum(['config', 'connectivity', 'placeholder', 'reconcile', 'serving']);
export type StorageStage = z.infer<typeof StorageStage>;

export const StorageFailed = z
  .object({
    stage: StorageStage,
    /** runtime/s3.ts failure kinds plus the bootstrap's own (`not-a-model`, `job-failed`, `checksum`, ...). */
    reason: z.string().regex(/^[a-z][a-z0-9-]{0,63}$/),
    message: Message,
    bucket: BucketName.optional(),
    model: ModelName.optional(),
    failedAt: IsoTime,
  })
  .strict();
export type StorageFailed = z.infer<typeof StorageFailed>;

export const EventDataSchemas = {
  [EventTypes.trainingRequested]: TrainingRequested,
  [EventTypes.trainingStarted]: TrainingStarted,
  [EventTypes.trainingSkipped]: TrainingSkipped,
  [EventTypes.trainingSucceeded]: TrainingSucceeded,
  [EventTypes.trainingFailed]: TrainingFailed,
  [EventTypes.modelCopied]: ModelCopied,
  [EventTypes.modelApproved]: ModelApproved,
  [EventTypes.modelRejected]: ModelRejected,
  [EventTypes.predictorRestarted]: PredictorRestarted,
  [EventTypes.deploymentVerified]: DeploymentVerified,
  [EventTypes.deploymentFailed]: DeploymentFailed,
  [EventTypes.deploymentRolledback]: DeploymentRolledback,
  [EventTypes.runFailed]: RunFailed,
  [EventTypes.runReconcile]: RunReconcile,
  [EventTypes.storageBootstrapRequested]: StorageBootstrapRequested,
  [EventTypes.storageValidated]: StorageValidated,
  [EventTypes.storageFailed]: StorageFailed,
} as const satisfies Record<EventType, z.ZodType>;

export type EventData<T extends EventType> = z.infer<(typeof EventDataSchemas)[T]>;
