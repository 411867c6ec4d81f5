import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { DataSource, type Trigger } from '../events/names.ts';

// The model catalog (config/models.yaml). Validated once at start-up; a bad catalog fails loudly with every
// problem and its path, never per event. `defaults` are deep-merged under every model before validation.

const dns1123Label = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label (lowercase letters, digits, -)');
export const CatalogModelName = dns1123Label.max(40);
export type CatalogModelName = z.infer<typeof CatalogModelName>;

const Quantity = z.union([z.string().regex(/^[0-9]+(\.[0-9]+)?([eE][0-9]+|[mkMGTPE]|[KMGTPE]i)?$/, 'must be a Kubernetes quantity'), z.number().nonnegative()]);
export const Resources = z.object({
  requests: z.record(z.string(), Quantity).optional(),
  limits: z.record(z.string(), Quantity).optional(),
}).strict();
export type Resources = z.infer<typeof Resources>;

export const Toleration = z.object({
  key: z.string().optional(),
  operator: z.enum(['Exists', 'Equal']).optional(),
  value: z.string().optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']).optional(),
}).strict();
export type Toleration = z.infer<typeof Toleration>;

export const GpuSpec = z.object({
  resourceName: z.string().default('nvidia.com/gpu'),
  count: z.number().int().min(1).max(16).default(1),
  tolerations: z.array(Toleration).default([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]),
  nodeSelector: z.record(z.string(), z.string()).default({ 'nvidia.com/gpu.present': 'true' }),
}).strict();
export type GpuSpec = z.infer<typeof GpuSpec>;

export const OutputSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('label'), labels: z.array(z.union([z.number(), z.string()])).min(1) }).strict(),
  z.object({ kind: z.literal('regression'), width: z.number().int().min(1).max(1000) }).strict(),
]);
export type OutputSpec = z.infer<typeof OutputSpec>;

// Thresholds against the served release (config/jobs/gate.py BASELINE; docs/gate.md). A threshold left out is
// not checked; `advisory` names checks whose failure is reported but does not reject.
const baselineThresholds = {
  minAgreement: z.number().min(0).max(1).optional(),
  maxRateChange: z.number().min(0).max(1).optional(),
  maxRelativeChange: z.number().min(0).optional(),
  maxMetricRegression: z.number().min(0).optional(),
  advisory: z.array(z.enum(['baseline-agreement', 'baseline-rate', 'baseline-change', 'baseline-metrics'])).optional(),
};
export const GateBaseline = z.object({
  ...baselineThresholds,
  /** Per trigger overrides (drift: the agreement checks are advisory unless set here). */
  triggers: z.partialRecord(z.enum(['schedule', 'drift', 'git', 'manual', 'pipeline', 'retry', 'catchup']), z.object(baselineThresholds).strict()).optional(),
}).strict();
export type GateBaseline = z.infer<typeof GateBaseline>;

/** The reference data set on the model's PVC: .npz (X, optional y) or .csv (targets in columns y / y_*). */
export const ReferenceData = z.object({
  path: z.string().max(512).regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[A-Za-z0-9._/-]+\.(npz|csv)$/, 'must be a relative path on the PVC ending in .npz or .csv'),
  anomalyLabel: z.union([z.number(), z.string()]).optional(),
}).strict();
export type ReferenceData = z.infer<typeof ReferenceData>;

/** The runtime that serves the model: its scikit-learn version (the predictor image's), for the pickle check. */
export const ServingRuntime = z.object({
  sklearnVersion: z.string().regex(/^[0-9]+\.[0-9]+(\.[0-9]+)?$/, 'must be a version like 1.5 or 1.5.2').optional(),
}).strict();
export type ServingRuntime = z.infer<typeof ServingRuntime>;

export const EventShortNames = [
  'training.requested', 'training.started', 'training.skipped', 'training.succeeded', 'training.failed',
  'model.copied', 'model.approved', 'model.rejected', 'predictor.restarted', 'deployment.verified',
  'deployment.failed', 'deployment.rolledback', 'run.failed', 'storage.failed', 'dead-letter',
] as const;

export const NotificationRoute = z.object({
  events: z.array(z.enum(EventShortNames)).min(1),
  channels: z.array(z.enum(['slack', 'email', 'kubernetes-event'])).min(1),
  emailTo: z.array(z.email()).default([]),
}).strict();
export type NotificationRoute = z.infer<typeof NotificationRoute>;

/**
 * Training data per trigger: one value for every trigger, or `default` plus per-trigger values. Scheduled runs
 * (PingSource ticks and the watchdog's catch-ups) of the platform this replaces train on `prometheus`; manual
 * and other runs keep `default` (docs/security.md, README "Catalog").
 */
export const DataSourcePolicy = z.union([
  DataSource,
  z.object({
    default: DataSource,
    schedule: DataSource.optional(), catchup: DataSource.optional(), manual: DataSource.optional(), drift: DataSource.optional(),
    git: DataSource.optional(), pipeline: DataSource.optional(), retry: DataSource.optional(),
  }).strict(),
]);
export type DataSourcePolicy = z.infer<typeof DataSourcePolicy>;

/** The `training.requested` fields a sender may set instead of the catalog's value (docs/security.md). */
export const OverrideFields = ['gitRef', 'notebookPath', 'dataSource', 'trainingHours', 'profile'] as const;
export type OverrideField = (typeof OverrideFields)[number];

/** A sender: the step name in the event's `source` (`/model-lifecycle/<name>`), or `*` for any sender. */
const SenderName = z.string().regex(/^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$/, 'must be a step name such as git-intake, or *');
const Senders = z.array(SenderName).max(32);
export const DEFAULT_OVERRIDES = {
  gitRef: ['git-intake'], notebookPath: [], dataSource: ['*'], trainingHours: ['*'], profile: ['*'],
} as const satisfies Record<OverrideField, readonly string[]>;
export const OverridePolicy = z.object({
  gitRef: Senders.default([...DEFAULT_OVERRIDES.gitRef]),
  notebookPath: Senders.default([...DEFAULT_OVERRIDES.notebookPath]),
  dataSource: Senders.default([...DEFAULT_OVERRIDES.dataSource]),
  trainingHours: Senders.default([...DEFAULT_OVERRIDES.trainingHours]),
  profile: Senders.default([...DEFAULT_OVERRIDES.profile]),
}).strict();
export type OverridePolicy = z.infer<typeof OverridePolicy>;

export const CatalogModel = z.object({
  name: CatalogModelName,
  enabled: z.boolean().default(true),
  inferenceService: dns1123Label.max(63),
  notebook: z.object({
    gitUrl: z.string().regex(/^(https:\/\/|ssh:\/\/|git@)[^\s]+$/, 'must be an https://, ssh:// or git@ URL'),
    gitRef: z.string().min(1).max(200),
    path: z.string().regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$))[^\0\\]+\.ipynb$/, 'must be a relative path to a .ipynb inside the repo'),
    image: z.string().min(1),
    credentialsSecret: z.string().optional(),
  }).strict(),
  serviceAccountName: z.string().default('model-training'),
  profile: z.enum(['cpu', 'gpu']).default('cpu'),
  gpu: GpuSpec.default({ resourceName: 'nvidia.com/gpu', count: 1, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }], nodeSelector: { 'nvidia.com/gpu.present': 'true' } }),
  storage: z.object({
    /** Where the served model lives: the shared PVC (default) or a bucket (docs/storage.md "S3 storage"). */
    kind: z.enum(['pvc', 's3']).default('pvc'),
    /** s3: the bucket (default: the one `configSecret` names). */
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name').optional(),
    /** s3: key prefix; releases live under `<prefix>/<model>/releases/<run>/model.pkl`. */
    prefix: z.string().max(200).regex(/^([A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*)?$/, 'must be a relative key prefix without leading or trailing /').default('models'),
    pvc: z.string().default('model-storage-pvc'),
    gpuPvc: z.string().default('model-storage-gpu-pvc'),
    configSecret: z.string().default('model-storage-config'),
  }).strict().default({ kind: 'pvc', prefix: 'models', pvc: 'model-storage-pvc', gpuPvc: 'model-storage-gpu-pvc', configSecret: 'model-storage-config' }),
  schedule: z.object({
    cron: z.string().regex(/^(\S+\s+){4}\S+$/, 'must be a five-field cron expression'),
    timezone: z.string().default('UTC'),
  }).strict().optional(),
  trainingHours: z.number().int().min(1).max(8760).default(168),
  dataSource: DataSourcePolicy.default('synthetic'),
  overrides: OverridePolicy.default({ gitRef: [...DEFAULT_OVERRIDES.gitRef], notebookPath: [], dataSource: ['*'], trainingHours: ['*'], profile: ['*'] }),
  prometheusUrl: z.string().default('http://prometheus-k8s.openshift-monitoring.svc:9090'),
  resources: Resources.default({}),
  features: z.object({ count: z.number().int().min(1).max(100000), names: z.array(z.string()).optional() }).strict(),
  output: OutputSpec,
  protocol: z.enum(['v1', 'v2']).default('v1'),
  referenceData: ReferenceData.optional(),
  serving: ServingRuntime.optional(),
  gate: z.object({
    minBytes: z.number().int().min(1).default(1000),
    probeRows: z.number().int().min(1).max(64).default(8),
    tolerance: z.number().nonnegative().default(1e-6),
    maxLoadSeconds: z.number().positive().default(60),
    baseline: GateBaseline.optional(),
  }).strict().default({ minBytes: 1000, probeRows: 8, tolerance: 1e-6, maxLoadSeconds: 60 }),
  drift: z.object({
    alerts: z.array(z.string().min(1)).min(1).default(['ModelDriftDetected']),
    modelLabel: z.string().default('model'),
    cooldownMinutes: z.number().int().min(0).default(360),
  }).strict().default({ alerts: ['ModelDriftDetected'], modelLabel: 'model', cooldownMinutes: 360 }),
  git: z.object({ watchPaths: z.array(z.string().min(1)).default([]) }).strict().default({ watchPaths: [] }),
  concurrency: z.enum(['skip', 'queue-latest']).default('skip'),
  releasesKept: z.number().int().min(2).max(50).default(5),
  deadlines: z.object({
    trainingMinutes: z.number().int().min(1).default(240),
    copyMinutes: z.number().int().min(1).default(30),
    gateMinutes: z.number().int().min(1).default(15),
    promoteMinutes: z.number().int().min(1).default(10),
    verifyMinutes: z.number().int().min(1).default(15),
  }).strict().default({ trainingMinutes: 240, copyMinutes: 30, gateMinutes: 15, promoteMinutes: 10, verifyMinutes: 15 }),
  notifications: z.object({ routes: z.array(NotificationRoute) }).strict().default({
    routes: [{ events: ['training.failed', 'run.failed', 'model.rejected', 'deployment.failed', 'deployment.rolledback', 'deployment.verified', 'dead-letter'], channels: ['slack', 'email', 'kubernetes-event'], emailTo: [] }],
  }),
}).strict();
export type CatalogModel = z.infer<typeof CatalogModel>;

export const Catalog = z.object({
  models: z.array(CatalogModel).min(1),
}).strict().superRefine((catalog, ctx) => {
  const seen = new Set<string>();
  catalog.models.forEach((m, i) => {
    if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `duplicate model name "${m.name}"` });
    seen.add(m.name);
    if (m.features.names && m.features.names.length !== m.features.count) {
      ctx.addIssue({ code: 'custom', path: ['models', i, 'features', 'names'], message: `has ${m.features.names.length} names but count is ${m.features.count}` });
    }
    if (m.gate.baseline && !m.referenceData) {
      ctx.addIssue({ code: 'custom', path: ['models', i, 'referenceData'], message: 'gate.baseline needs referenceData (the rows both models predict on)' });
    }
    if (m.schedule) {
      try { Intl.DateTimeFormat('en-US', { timeZone: m.schedule.timezone }); } catch {
        ctx.addIssue({ code: 'custom', path: ['models', i, 'schedule', 'timezone'], message: `unknown time zone "${m.schedule.timezone}"` });
      }
    }
  });
});
export type Catalog = z.infer<typeof Catalog>;

/** The data source a run of `trigger` trains on when its request names none. */
export function dataSourceFor(model: Pick<CatalogModel, 'dataSource'>, trigger: Trigger): DataSource {
  const policy = model.dataSource;
  return typeof policy === 'string' ? policy : policy[trigger] ?? policy.default;
}

export class CatalogError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`invalid model catalog ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'CatalogError';
    this.problems = problems;
  }
}

/** Parse and validate catalog text; throws CatalogError listing every problem with its path. */
export function parseCatalog(text: string, source = '(inline)'): Catalog {
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true });
  } catch (err) {
    throw new CatalogError(source, [`not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`]);
  }
  const merged = applyDefaults(doc);
  const scattered = namespaceProblems(merged);
  if (scattered.length > 0) throw new CatalogError(source, scattered);
  const result = Catalog.safeParse(merged);
  if (!result.success) {
    throw new CatalogError(source, result.error.issues.map((i) => `${formatPath(i.path)}: ${i.message}`));
  }
  return result.data;
}

export function loadCatalog(path: string): Catalog {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CatalogError(path, [`cannot read: ${(err as Error).message}`]);
  }
  return parseCatalog(text, path);
}

export function findModel(catalog: Catalog, name: string): CatalogModel | undefined {
  return catalog.models.find((m) => m.name === name);
}

/**
 * ModelRuns own the NVJs and Jobs of their run, and owner references cannot cross namespaces; the steps also
 * read PVCs and InferenceServices beside them. So everything lives in the one namespace the functions run in
 * (`mlops render --namespace`), and the catalog has no way to name another.
 */
function namespaceProblems(doc: unknown): string[] {
  if (!isRecord(doc) || !Array.isArray(doc.models)) return [];
  return doc.models.flatMap((m: unknown, i) => (isRecord(m) && 'namespace' in m
    ? [`models[${i}].namespace: not supported: ModelRuns, NVJs, Jobs, PVCs and InferenceServices share the namespace the functions are installed in (owner references cannot cross namespaces); use mlops render --namespace`]
    : []));
}

function applyDefaults(doc: unknown): unknown {
  if (!isRecord(doc)) return doc;
  const { defaults, ...rest } = doc;
  if (defaults === undefined) return rest;
  if (!isRecord(defaults)) return { ...rest, defaults };
  const models = Array.isArray(rest.models) ? rest.models.map((m: unknown) => (isRecord(m) ? deepMerge(defaults, m) : m)) : rest.models;
  return { ...rest, models };
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isRecord(b) && isRecord(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => (typeof seg === 'number' ? `${acc}[${seg}]` : acc ? `${acc}.${String(seg)}` : String(seg)), '') || '(root)';
}
