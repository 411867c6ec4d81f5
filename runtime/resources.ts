// The Kubernetes objects model-lifecycle reads and writes: where they live (descriptors) and what they
// look like (zod). Our ModelRun mirrors config/crds/modelrun.yaml exactly and strips unknown keys, as
// the API server prunes them. Upstream and core kinds are loose subsets: unknown keys are kept so a
// read-modify-write never drops fields we do not model.
import { z } from 'zod';
import { Provenance as EventProvenance, StepName } from '../events/catalog.ts';
import { DataSource, ModelName, Profile, Trigger } from '../events/names.ts';

// The shapes events/ declares (model names, profiles, triggers, data sources, run steps, provenance) are
// declared there once and used here; the stored forms below only loosen what the CRD does not limit.
export { StepName };

export type ResourceDescriptor = {
  readonly apiVersion: string;
  /** '' for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly namespaced: boolean;
};

export const Resources = {
  modelRun: { apiVersion: 'lifecycle.mlops.dev/v1alpha1', group: 'lifecycle.mlops.dev', version: 'v1alpha1', kind: 'ModelRun', plural: 'modelruns', namespaced: true },
  notebookValidationJob: { apiVersion: 'mlops.mlops.dev/v1alpha1', group: 'mlops.mlops.dev', version: 'v1alpha1', kind: 'NotebookValidationJob', plural: 'notebookvalidationjobs', namespaced: true },
  inferenceService: { apiVersion: 'serving.kserve.io/v1beta1', group: 'serving.kserve.io', version: 'v1beta1', kind: 'InferenceService', plural: 'inferenceservices', namespaced: true },
  application: { apiVersion: 'argoproj.io/v1alpha1', group: 'argoproj.io', version: 'v1alpha1', kind: 'Application', plural: 'applications', namespaced: true },
  pipelineRun: { apiVersion: 'tekton.dev/v1', group: 'tekton.dev', version: 'v1', kind: 'PipelineRun', plural: 'pipelineruns', namespaced: true },
  lease: { apiVersion: 'coordination.k8s.io/v1', group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true },
  job: { apiVersion: 'batch/v1', group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true },
  pod: { apiVersion: 'v1', group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true },
  event: { apiVersion: 'v1', group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true },
  configMap: { apiVersion: 'v1', group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true },
  secret: { apiVersion: 'v1', group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true },
  deployment: { apiVersion: 'apps/v1', group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true },
  persistentVolumeClaim: { apiVersion: 'v1', group: '', version: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims', namespaced: true },
} as const satisfies Record<string, ResourceDescriptor>;
export type ResourceName = keyof typeof Resources;

/** REST path of a collection (no name) or of one object, e.g. `/apis/batch/v1/namespaces/ns/jobs/x`. */
export function resourcePath(resource: ResourceDescriptor, namespace?: string, name?: string, subresource?: 'status'): string {
  const base = resource.group === '' ? `/api/${resource.version}` : `/apis/${resource.group}/${resource.version}`;
  const ns = resource.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const one = name === undefined ? '' : `/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}`;
  return `${base}${ns}/${resource.plural}${one}`;
}

// ---------------------------------------------------------------------------------------------------
// Shared pieces

/**
 * A timestamp as the API returns it: an RFC 3339 string in raw JSON, or a Date when it went through
 * @kubernetes/client-node's typed (core/batch/coordination) clients.
 */
export const KubeTime = z.union([z.string(), z.date()]);
export type KubeTime = z.infer<typeof KubeTime>;

/** RFC 3339 date-time as our CRD stores it (format: date-time). */
const DateTime = z.iso.datetime({ offset: true });
const StringMap = z.record(z.string(), z.string());

export const OwnerReference = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof OwnerReference>;

export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.number().int().optional(),
  creationTimestamp: KubeTime.optional(),
  deletionTimestamp: KubeTime.optional(),
  labels: StringMap.optional(),
  annotations: StringMap.optional(),
  ownerReferences: z.array(OwnerReference).optional(),
  finalizers: z.array(z.string()).optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** metav1.Condition (ModelRun, NVJ). */
export const Condition = z.looseObject({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: KubeTime.optional(),
  observedGeneration: z.number().int().optional(),
});
export type Condition = z.infer<typeof Condition>;

// ---------------------------------------------------------------------------------------------------
// ModelRun (lifecycle.mlops.dev/v1alpha1) — mirrors config/crds/modelrun.yaml

export const ModelRunPhase = z.enum(['Pending', 'Training', 'Copying', 'Gating', 'Promoting', 'Verifying', 'Succeeded', 'Failed', 'Rejected', 'RolledBack']);
export type ModelRunPhase = z.infer<typeof ModelRunPhase>;
/** `ModelRunPhases.Succeeded === 'Succeeded'` and so on. */
export const ModelRunPhases = ModelRunPhase.enum;

export const TerminalPhases = ['Succeeded', 'Failed', 'Rejected', 'RolledBack'] as const satisfies readonly ModelRunPhase[];
export type TerminalPhase = (typeof TerminalPhases)[number];
export function isTerminalPhase(phase: string | undefined): phase is TerminalPhase {
  return (TerminalPhases as readonly string[]).includes(phase ?? '');
}

export const StepNames = StepName.enum;

type ProvenanceKey = keyof typeof EventProvenance.shape;
/**
 * A run's provenance as the CRD stores it: the fields of the event's `Provenance` (events/catalog.ts), as plain
 * strings (the CRD sets no length limits, and reading a run must never fail on one a writer let through).
 */
export const StoredProvenance = z.object(Object.fromEntries(Object.keys(EventProvenance.shape).map((k) => [k, z.string().optional()])) as Record<ProvenanceKey, z.ZodOptional<z.ZodString>>);
export type StoredProvenance = z.infer<typeof StoredProvenance>;
/** A run's trigger: a request's (events/names.ts) or `manual-rollback` (mlops rollback, docs/day2.md), which no request carries. */
export const ModelRunTrigger = z.enum([...Trigger.options, 'manual-rollback']);
export type ModelRunTrigger = z.infer<typeof ModelRunTrigger>;

export const TrainingParameters = z.object({
  dataSource: DataSource.optional(),
  trainingHours: z.number().int().min(1).optional(),
  trainingDays: z.number().int().min(1).optional(),
  gitUrl: z.string().optional(),
  gitRef: z.string().optional(),
  notebookPath: z.string().optional(),
  image: z.string().optional(),
  serviceAccountName: z.string().optional(),
  prometheusUrl: z.string().optional(),
});
export type TrainingParameters = z.infer<typeof TrainingParameters>;

export const ModelRunSpec = z.object({
  model: ModelName,
  trigger: ModelRunTrigger,
  idempotencyKey: z.string().min(1).max(512),
  profile: Profile,
  provenance: StoredProvenance.optional(),
  training: TrainingParameters.optional(),
  requestedBy: z.string().optional(),
  reason: z.string().max(1024).optional(),
  /** Trigger `manual-rollback` (docs/day2.md): the kept release to serve again. */
  rollback: z.object({ release: z.string().min(1).max(63), force: z.boolean().optional() }).optional(),
});
export type ModelRunSpec = z.infer<typeof ModelRunSpec>;

export const StepRecord = z.object({
  started: DateTime.optional(),
  finished: DateTime.optional(),
  outcome: z.string().optional(),
  message: z.string().optional(),
  /** Name of the NVJ or Job that did the work. */
  job: z.string().optional(),
});
export type StepRecord = z.infer<typeof StepRecord>;

export const ModelRunCondition = z.object({
  type: z.string().max(316).regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.number().int().min(0).optional(),
  lastTransitionTime: DateTime,
  reason: z.string().min(1).max(1024).regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/),
  message: z.string().max(32768),
});
export type ModelRunCondition = z.infer<typeof ModelRunCondition>;

/** A gate check as the CRD stores it (`status.gate.checks`): the event's `GateCheck` (events/catalog.ts) without `observed`, unbounded. */
export const StoredGateCheck = z.object({ name: z.string(), ok: z.boolean(), message: z.string().optional() });
export type StoredGateCheck = z.infer<typeof StoredGateCheck>;

/** status.gate.baseline (config/crds/modelrun.yaml): what the gate compared with the served release (docs/gate.md). */
export const GateBaselineStatus = z.object({
  served: z.enum(['none', 'placeholder', 'archived', 'release']).optional(),
  release: z.string().optional(),
  referenceRows: z.number().int().optional(),
  trigger: z.string().optional(),
  skipped: z.string().optional(),
  checks: z.array(z.object({
    check: z.string(),
    measure: z.string(),
    value: z.number().optional(),
    threshold: z.number().optional(),
    worst: z.string().optional(),
    advisory: z.boolean().optional(),
    ok: z.boolean(),
  })).optional(),
  metrics: z.array(z.object({ model: z.enum(['candidate', 'served']), metric: z.string(), output: z.string().optional(), value: z.number() })).optional(),
});
export type GateBaselineStatus = z.infer<typeof GateBaselineStatus>;

/** How a restored release was checked: against its own gate's probe record, or (no record) for well-formed answers. */
export const RollbackCheck = z.enum(['gate-probe', 'answers']);
export type RollbackCheck = z.infer<typeof RollbackCheck>;

export const RollbackRecord = z.object({
  release: z.string().min(1),
  startedAt: DateTime,
  verified: z.boolean().optional(),
  check: RollbackCheck.optional(),
  finished: DateTime.optional(),
  message: z.string().optional(),
});
export type RollbackRecord = z.infer<typeof RollbackRecord>;

export const ModelRunStatus = z.object({
  phase: ModelRunPhase.optional(),
  step: z.string().optional(),
  message: z.string().optional(),
  observedGeneration: z.number().int().optional(),
  warnings: z.array(z.string()).optional(),
  steps: z
    .object({
      training: StepRecord.optional(),
      copy: StepRecord.optional(),
      gate: StepRecord.optional(),
      promote: StepRecord.optional(),
      verify: StepRecord.optional(),
      rollback: StepRecord.optional(),
    })
    .optional(),
  artifact: z
    .object({
      path: z.string().optional(),
      bytes: z.number().int().min(0).optional(),
      sha256: z.string().regex(/^[a-f0-9]{64}$/).optional(),
    })
    .optional(),
  gate: z
    .object({
      verdict: z.enum(['approved', 'rejected']).optional(),
      /** True only under `mlops dev` when the gate ran on a stand-in artifact. */
      simulated: z.boolean().optional(),
      checks: z.array(StoredGateCheck).optional(),
      report: z.record(z.string(), z.unknown()).optional(),
      /** The comparison with the served release in typed fields for kube-state-metrics (runtime/baseline.ts). */
      baseline: GateBaselineStatus.optional(),
    })
    .optional(),
  /** Probe rows and the gate's outputs for them (preserve-unknown in the CRD). */
  probe: z.looseObject({ rows: z.array(z.unknown()).optional(), expected: z.array(z.unknown()).optional() }).optional(),
  release: z
    .object({
      promoted: z.string().optional(),
      replaced: z.string().nullable().optional(),
      restored: z.string().nullable().optional(),
      /** Set when the run ended approved but unpromoted because this release was pinned (docs/day2.md). */
      pinned: z.object({ release: z.string(), by: z.string() }).optional(),
    })
    .optional(),
  /**
   * A failed verification's rollback, verified like a promotion (docs/run-lifecycle.md): the release being restored,
   * when restoring began (recorded before the InferenceService is patched; the rollback's new pods are the ones
   * created since), and verify-endpoint's verdict on them. RolledBack needs `verified: true`.
   */
  rollback: RollbackRecord.optional(),
  deadlines: z.object({ step: DateTime.optional(), run: DateTime.optional() }).optional(),
  startedAt: DateTime.optional(),
  finishedAt: DateTime.optional(),
  conditions: z.array(ModelRunCondition).optional(),
});
export type ModelRunStatus = z.infer<typeof ModelRunStatus>;

export const ModelRun = z.object({
  apiVersion: z.literal(Resources.modelRun.apiVersion),
  kind: z.literal(Resources.modelRun.kind),
  metadata: ObjectMeta,
  spec: ModelRunSpec,
  status: ModelRunStatus.optional(),
});
export type ModelRun = z.infer<typeof ModelRun>;

// ---------------------------------------------------------------------------------------------------
// NotebookValidationJob (mlops.mlops.dev/v1alpha1) — the subset we create and read

/** Every phase the operator reports; `Running`↔`ValidationRunning` flap while the notebook runs. */
export const NvjPhases = ['Initializing', 'Building', 'BuildComplete', 'ValidationRunning', 'Pending', 'Running', 'Succeeded', 'Failed'] as const;
export type NvjPhase = (typeof NvjPhases)[number];
export const NvjTerminalPhases = ['Succeeded', 'Failed'] as const satisfies readonly NvjPhase[];
export function isNvjTerminalPhase(phase: string | undefined): phase is (typeof NvjTerminalPhases)[number] {
  return phase === 'Succeeded' || phase === 'Failed';
}

export const EnvVar = z.looseObject({
  name: z.string(),
  value: z.string().optional(),
  valueFrom: z
    .looseObject({
      configMapKeyRef: z.looseObject({ name: z.string(), key: z.string() }).optional(),
      secretKeyRef: z.looseObject({ name: z.string(), key: z.string() }).optional(),
    })
    .optional(),
});
export type EnvVar = z.infer<typeof EnvVar>;

export const EnvFromSource = z.looseObject({
  configMapRef: z.looseObject({ name: z.string() }).optional(),
  secretRef: z.looseObject({ name: z.string() }).optional(),
});
export type EnvFromSource = z.infer<typeof EnvFromSource>;

export const Toleration = z.looseObject({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
  tolerationSeconds: z.number().int().optional(),
});
export type Toleration = z.infer<typeof Toleration>;

export const NotebookValidationJob = z.looseObject({
  apiVersion: z.literal(Resources.notebookValidationJob.apiVersion),
  kind: z.literal(Resources.notebookValidationJob.kind),
  metadata: ObjectMeta,
  spec: z.looseObject({
    notebook: z.looseObject({
      git: z.looseObject({
        url: z.string(),
        /** Branch or tag: the operator clones with --branch. */
        ref: z.string(),
        credentialsSecret: z.string().optional(),
      }),
      path: z.string(),
    }),
    podConfig: z.looseObject({
      containerImage: z.string(),
      serviceAccountName: z.string().optional(),
      env: z.array(EnvVar).optional(),
      envFrom: z.array(EnvFromSource).optional(),
      /** Quantities are strings (upstream map[string]string): `{ 'nvidia.com/gpu': '1' }`. */
      resources: z.looseObject({ limits: StringMap.optional(), requests: StringMap.optional() }).optional(),
      volumes: z
        .array(
          z.looseObject({
            name: z.string(),
            persistentVolumeClaim: z.looseObject({ claimName: z.string(), readOnly: z.boolean().optional() }).optional(),
          }),
        )
        .optional(),
      volumeMounts: z
        .array(
          z.looseObject({
            name: z.string(),
            mountPath: z.string(),
            subPath: z.string().optional(),
            readOnly: z.boolean().optional(),
          }),
        )
        .optional(),
      /** tolerations and nodeSelector need operator >= v1.0.7. */
      tolerations: z.array(Toleration).optional(),
      nodeSelector: StringMap.optional(),
    }),
    /** Not enforced by the operator: model-lifecycle enforces its own deadlines. */
    timeout: z.string().optional(),
  }),
  status: z
    .looseObject({
      /** A string, not an enum: an unknown future phase must not break reading the object. */
      phase: z.string().optional(),
      message: z.string().optional(),
      startTime: KubeTime.optional(),
      completionTime: KubeTime.optional(),
      retryCount: z.number().int().optional(),
      lastRetryTime: KubeTime.optional(),
      validationPodName: z.string().optional(),
      conditions: z.array(Condition).optional(),
    })
    .optional(),
});
export type NotebookValidationJob = z.infer<typeof NotebookValidationJob>;

// ---------------------------------------------------------------------------------------------------
// InferenceService (serving.kserve.io/v1beta1) — the subset we read and patch

/** The predictor annotation whose change rolls the predictor (docs/design.md, Kubernetes contract). */
export const ModelReleaseAnnotation = 'mlops.dev/model-release';

export const InferenceService = z.looseObject({
  apiVersion: z.literal(Resources.inferenceService.apiVersion),
  kind: z.literal(Resources.inferenceService.kind),
  metadata: ObjectMeta,
  spec: z.looseObject({
    predictor: z.looseObject({
      annotations: StringMap.optional(),
      labels: StringMap.optional(),
      model: z
        .looseObject({
          modelFormat: z.looseObject({ name: z.string(), version: z.string().optional() }).optional(),
          storageUri: z.string().optional(),
          protocolVersion: z.string().optional(),
          runtime: z.string().optional(),
        })
        .optional(),
      containers: z
        .array(z.looseObject({ name: z.string().optional(), image: z.string().optional(), args: z.array(z.string()).optional() }))
        .optional(),
    }),
  }),
  status: z
    .looseObject({
      url: z.string().optional(),
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string() })).optional(),
    })
    .optional(),
});
export type InferenceService = z.infer<typeof InferenceService>;

// ---------------------------------------------------------------------------------------------------
// Core kinds — loose subsets

/** The per-model lock (`model-lock-<model>`, holder = ModelRun name). Times are MicroTime strings. */
export const Lease = z.looseObject({
  apiVersion: z.literal(Resources.lease.apiVersion).optional(),
  kind: z.literal(Resources.lease.kind).optional(),
  metadata: ObjectMeta,
  spec: z
    .looseObject({
      holderIdentity: z.string().nullable().optional(),
      leaseDurationSeconds: z.number().int().nullable().optional(),
      acquireTime: KubeTime.nullable().optional(),
      renewTime: KubeTime.nullable().optional(),
      leaseTransitions: z.number().int().nullable().optional(),
    })
    .optional(),
});
export type Lease = z.infer<typeof Lease>;

export const JobCondition = z.looseObject({
  type: z.string(),
  status: z.string(),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: KubeTime.optional(),
});
export type JobCondition = z.infer<typeof JobCondition>;

/**
 * batch/v1 Job. The step result (the script's JSON) is NOT on the Job: it is the container termination
 * message of the Job's Pod (`Pod.status.containerStatuses[].state.terminated.message`), so read the
 * pods labelled `job-name=<job>`, which every Kubernetes version sets (1.27+ also `batch.kubernetes.io/job-name`):
 * runtime/jobs.ts `jobPods`.
 */
export const Job = z.looseObject({
  apiVersion: z.literal(Resources.job.apiVersion).optional(),
  kind: z.literal(Resources.job.kind).optional(),
  metadata: ObjectMeta,
  spec: z
    .looseObject({
      activeDeadlineSeconds: z.number().int().optional(),
      backoffLimit: z.number().int().optional(),
      ttlSecondsAfterFinished: z.number().int().optional(),
      template: z.looseObject({}).optional(),
    })
    .optional(),
  status: z
    .looseObject({
      active: z.number().int().optional(),
      succeeded: z.number().int().optional(),
      failed: z.number().int().optional(),
      startTime: KubeTime.optional(),
      completionTime: KubeTime.optional(),
      conditions: z.array(JobCondition).optional(),
    })
    .optional(),
});
export type Job = z.infer<typeof Job>;

/** Where a Job stands: `Complete` / `Failed` conditions (True) are final; anything else is still running. */
export function jobOutcome(job: Job): 'succeeded' | 'failed' | 'running' {
  const conditions = job.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Complete' && c.status === 'True')) return 'succeeded';
  if (conditions.some((c) => c.type === 'Failed' && c.status === 'True')) return 'failed';
  return 'running';
}

export const ContainerState = z.looseObject({
  running: z.looseObject({ startedAt: KubeTime.optional() }).optional(),
  waiting: z.looseObject({ reason: z.string().optional(), message: z.string().optional() }).optional(),
  terminated: z
    .looseObject({
      exitCode: z.number().int(),
      reason: z.string().optional(),
      /** The container termination message (≤ 4 KiB): our Jobs put their JSON result here. */
      message: z.string().optional(),
      startedAt: KubeTime.optional(),
      finishedAt: KubeTime.optional(),
    })
    .optional(),
});
export type ContainerState = z.infer<typeof ContainerState>;

export const ContainerStatus = z.looseObject({
  name: z.string(),
  ready: z.boolean().optional(),
  restartCount: z.number().int().optional(),
  image: z.string().optional(),
  state: ContainerState.optional(),
  lastState: ContainerState.optional(),
});
export type ContainerStatus = z.infer<typeof ContainerStatus>;

export const Pod = z.looseObject({
  apiVersion: z.literal(Resources.pod.apiVersion).optional(),
  kind: z.literal(Resources.pod.kind).optional(),
  metadata: ObjectMeta,
  spec: z.looseObject({}).optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      podIP: z.string().optional(),
      startTime: KubeTime.optional(),
      conditions: z.array(z.looseObject({ type: z.string(), status: z.string(), lastTransitionTime: KubeTime.nullable().optional() })).optional(),
      containerStatuses: z.array(ContainerStatus).optional(),
    })
    .optional(),
});
export type Pod = z.infer<typeof Pod>;

/** True when the Pod's `Ready` condition is True (the readiness KServe reports, not a health signal). */
export function isPodReady(pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** The termination message of a container (the first terminated one when no name is given). */
export function terminationMessage(pod: Pod, container?: string): string | undefined {
  const statuses = pod.status?.containerStatuses ?? [];
  const status = container === undefined ? statuses.find((s) => s.state?.terminated) : statuses.find((s) => s.name === container);
  return status?.state?.terminated?.message;
}
