import { SUMMARY_MAX, clip, parseApiServerSource } from '../events/index.ts';
import type { CatalogModel } from './catalog.ts';
import { invalid, retryable } from './errors.ts';
import type { KubePort, KubeObject } from './kube.ts';
import { Labels, MANAGER, jobNameFor, modelRunOwnerRef, runLabels } from './labels.ts';
import { Job, Resources, jobOutcome, terminationMessage, type ModelRun, type Pod } from './resources.ts';

// The step Jobs (`<run>-copy`, `<run>-gate`, `<run>-promote`, `<run>-rollback`): a script from config/jobs
// mounted from the scripts ConfigMap, the result JSON in the container's termination message, a deadline,
// and a deterministic name so creating it twice is harmless.

export const SCRIPTS_CONFIGMAP = 'model-lifecycle-scripts';
export const SCRIPTS_MOUNT = '/opt/mlops';
export const SHARED_MOUNT = '/mnt/shared';
export const GPU_MOUNT = '/mnt/gpu';
export const RESULT_CONTAINER = 'step';
/** Image for copy/promote (standard library Python only); the gate runs in the notebook image. */
export const DEFAULT_UTILITY_IMAGE = 'registry.access.redhat.com/ubi9/python-311:latest';

export type JobStep = 'copy' | 'gate' | 'promote' | 'rollback';

/**
 * Steps whose Job unpickles a model file (which can run code): their pods get no ServiceAccount token, no
 * secrets and, through the NetworkPolicy `mlops render` writes for these labels, no egress (docs/openshift.md).
 */
export const ISOLATED_JOB_STEPS: readonly JobStep[] = ['gate', 'promote', 'rollback'];

/**
 * The label that lets a bucket model's promote Job reach the S3 endpoint (the `mlops-model-jobs-s3-upload`
 * NetworkPolicy `mlops render` writes; docs/storage.md); every other gate/promote/rollback pod keeps no egress.
 */
export const S3_UPLOAD_EGRESS = { label: 'mlops.dev/egress', value: 's3-upload' } as const;

/**
 * Pod Security "restricted" (what OpenShift's restricted-v2 SCC also demands): non-root, no privilege
 * escalation, every capability dropped, the runtime's default seccomp profile. No runAsUser/fsGroup: on
 * OpenShift the namespace's UID range applies; elsewhere the image's non-root USER does.
 */
export const RESTRICTED_POD_SECURITY = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } } as const;
export const RESTRICTED_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  runAsNonRoot: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
} as const;

export interface StepJobSpec {
  step: JobStep;
  run: ModelRun;
  model: CatalogModel;
  script: 'copy.py' | 'gate.py' | 'promote.py';
  image: string;
  env: Record<string, string>;
  /** PVCs to mount: claim name → mount path. */
  volumes: Array<{ claimName: string; mountPath: string; readOnly?: boolean }>;
  deadlineSeconds: number;
  serviceAccountName?: string;
}

export function stepJobManifest(spec: StepJobSpec): KubeObject {
  const runName = spec.run.metadata.name ?? '';
  const name = jobNameFor(runName, spec.step);
  const labels = runLabels(spec.model.name, runName, spec.step);
  const env = Object.entries(spec.env).map(([k, v]) => ({ name: k, value: v }));
  env.push({ name: 'TERMINATION_LOG', value: '/dev/termination-log' });
  return {
    metadata: { name, labels, ownerReferences: modelRunOwnerRef(spec.run) },
    spec: {
      // One attempt: a failed step is a verdict the function reads, not something to retry blindly.
      backoffLimit: 0,
      activeDeadlineSeconds: spec.deadlineSeconds,
      ttlSecondsAfterFinished: 7 * 24 * 3600,
      template: {
        metadata: { labels },
        spec: {
          restartPolicy: 'Never',
          ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
          // No step script calls the Kubernetes API; a pod that unpickles a model must not hold a token.
          automountServiceAccountToken: false,
          securityContext: { ...RESTRICTED_POD_SECURITY },
          containers: [{
            name: RESULT_CONTAINER,
            image: spec.image,
            command: ['python3', `${SCRIPTS_MOUNT}/${spec.script}`],
            env,
            terminationMessagePath: '/dev/termination-log',
            terminationMessagePolicy: 'File',
            volumeMounts: [
              { name: 'scripts', mountPath: SCRIPTS_MOUNT, readOnly: true },
              ...spec.volumes.map((v, i) => ({ name: `data-${i}`, mountPath: v.mountPath, ...(v.readOnly ? { readOnly: true } : {}) })),
            ],
            resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '2Gi' } },
            securityContext: { ...RESTRICTED_CONTAINER_SECURITY, capabilities: { drop: ['ALL'] } },
          }],
          volumes: [
            { name: 'scripts', configMap: { name: SCRIPTS_CONFIGMAP, defaultMode: 0o555 } },
            ...spec.volumes.map((v, i) => ({ name: `data-${i}`, persistentVolumeClaim: { claimName: v.claimName, ...(v.readOnly ? { readOnly: true } : {}) } })),
          ],
        },
      },
    },
  };
}

export type JobResult =
  | { state: 'running' }
  | { state: 'finished'; succeeded: boolean; result?: unknown; problem?: string };

/**
 * The outcome of a step Job: its condition plus the JSON its container wrote as termination message.
 * A finished Job without parseable JSON is reported with a `problem` (callers fail closed on it).
 */
export async function readJobResult(kube: KubePort, job: Job): Promise<JobResult> {
  const outcome = jobOutcome(job);
  if (outcome === 'running') return { state: 'running' };
  const name = job.metadata.name ?? '';
  const pods = await jobPods(kube, job);
  const messages = pods.map((p) => terminationMessage(p, RESULT_CONTAINER)).filter((m): m is string => !!m);
  const message = messages[messages.length - 1];
  if (!message) return { state: 'finished', succeeded: outcome === 'succeeded', problem: `job ${name} left no termination message` };
  try {
    return { state: 'finished', succeeded: outcome === 'succeeded', result: JSON.parse(message) as unknown };
  } catch {
    return { state: 'finished', succeeded: outcome === 'succeeded', problem: `job ${name} termination message is not JSON` };
  }
}

/**
 * The pods of a Job. `job-name` is the label every Kubernetes version sets (before 1.27 the only one, beside
 * `controller-uid`; 1.27+ adds `batch.kubernetes.io/job-name`); pods of an earlier Job of the same name are
 * told apart by their controller owner reference.
 */
export async function jobPods(kube: KubePort, job: Job): Promise<Array<Pod & KubeObject>> {
  const name = job.metadata.name ?? '';
  const pods = await kube.list<Pod & KubeObject>(Resources.pod, { labelSelector: `job-name=${name}` });
  const uid = job.metadata.uid;
  return pods.items.filter((p) => !uid || !p.metadata?.ownerReferences || p.metadata.ownerReferences.some((r) => r.uid === uid));
}

export type FinishedStepJob = { kind: 'ignore'; reason: string } | { kind: 'finished'; run: string; model: string; step: JobStep; job: Job };

/**
 * An ApiServerSource Job event → one of our finished step Jobs of `steps`, or why it is not one. Running Jobs
 * are ignored without any API call (every status write is an update event).
 */
export function finishedStepJob(ce: unknown, steps: readonly JobStep[]): FinishedStepJob {
  const found = classifyStepJob(ce, steps);
  return found.kind === 'unstarted' ? { kind: 'ignore', reason: `${found.step} Job still running` } : found;
}

type ClassifiedStepJob = FinishedStepJob | { kind: 'unstarted'; run: string; model: string; step: JobStep; job: Job };

/**
 * The Job controller's first sync writes `status.startTime` together with `active` once it created the pod; a
 * started Job with nothing active, succeeded or failed and no condition has no pod: it may be unable to create one.
 */
function unstarted(job: Job): boolean {
  const s = job.status;
  return !!s?.startTime && !s.active && !s.succeeded && !s.failed && (s.conditions ?? []).length === 0;
}

function classifyStepJob(ce: unknown, steps: readonly JobStep[]): ClassifiedStepJob {
  const parsed = parseApiServerSource(ce);
  if (!parsed.ok) throw invalid(parsed.reason);
  if (parsed.value.mode !== 'resource') return { kind: 'ignore', reason: 'ref-mode event' };
  if (parsed.value.action === 'delete') return { kind: 'ignore', reason: 'Job deleted' };
  const object = parsed.value.object;
  if (object.kind !== 'Job') return { kind: 'ignore', reason: `a ${object.kind}, not a Job` };
  return classifyJobObject(object, steps);
}

function classifyJobObject(object: unknown, steps: readonly JobStep[]): ClassifiedStepJob {
  const job = Job.safeParse(object);
  if (!job.success) throw invalid(`Job: ${job.error.issues[0]?.message ?? 'invalid'}`);
  const labels = job.data.metadata.labels ?? {};
  const run = labels[Labels.run];
  const step = labels[Labels.step] as JobStep | undefined;
  if (labels[Labels.managedBy] !== MANAGER || !step || !steps.includes(step) || !run) return { kind: 'ignore', reason: `not a ${steps.join('/')} Job of ours` };
  if (job.data.metadata.name !== jobNameFor(run, step)) return { kind: 'ignore', reason: `Job ${job.data.metadata.name ?? ''} is not named after run ${run}` };
  if (jobOutcome(job.data) === 'running') {
    if (unstarted(job.data)) return { kind: 'unstarted', run, model: labels[Labels.model] ?? '', step, job: job.data };
    return { kind: 'ignore', reason: `${step} Job still running` };
  }
  return { kind: 'finished', run, model: labels[Labels.model] ?? '', step, job: job.data };
}

export type StepJobOutcome = { kind: 'ignore'; reason: string } | { kind: 'finished'; run: string; model: string; step: JobStep; job: Job; evidence: JobEvidence };

/**
 * An ApiServerSource Job event → the evidence of one of our step Jobs that ended, or that cannot start. A Job
 * whose pod the controller cannot create (Pod Security, quota, an admission webhook) stays "running" until its
 * deadline; the controller says why only in a `FailedCreate` Warning Event on the Job (which updates nothing
 * on the Job itself), so a started Job without a pod is checked for that Event, and the run fails at once with
 * its message (docs/openshift.md).
 */
export async function stepJobOutcome(kube: KubePort, ce: unknown, steps: readonly JobStep[]): Promise<StepJobOutcome> {
  return outcomeOf(kube, classifyStepJob(ce, steps));
}

/**
 * The same for a step Job read from the API (the reconcile wakes a step without any Job event: docs/run-lifecycle.md).
 * Undefined when the Job does not exist.
 */
export async function stepJobOutcomeByName(kube: KubePort, name: string, steps: readonly JobStep[]): Promise<StepJobOutcome | undefined> {
  const job = await kube.get<Job & KubeObject>(Resources.job, name);
  if (!job) return undefined;
  return outcomeOf(kube, classifyJobObject({ apiVersion: 'batch/v1', kind: 'Job', ...job }, steps));
}

async function outcomeOf(kube: KubePort, found: ClassifiedStepJob): Promise<StepJobOutcome> {
  if (found.kind === 'ignore') return found;
  if (found.kind === 'finished') return { ...found, evidence: await jobEvidence(kube, found.job) };
  const name = found.job.metadata.name ?? '';
  if ((await jobPods(kube, found.job)).length > 0) return { kind: 'ignore', reason: `${found.step} Job has its pod` };
  const failed = await failedCreateMessage(kube, found.job);
  // The controller records the Event asynchronously: a Job update may arrive first. 503: the broker redelivers.
  if (!failed) throw retryable(`job ${name} has started but has no pod and no FailedCreate event yet`);
  return {
    kind: 'finished', run: found.run, model: found.model, step: found.step, job: found.job,
    evidence: { job: name, succeeded: false, problem: `job ${name} could not create its pod`, failure: clip(`FailedCreate: ${failed}`, 1000, { oneLine: true }) },
  };
}

interface CoreEvent { reason?: string; message?: string; count?: number; lastTimestamp?: string; involvedObject?: { uid?: string } }

/** The newest `FailedCreate` Event's message for this Job (by UID, so an earlier Job of the same name is not it). */
export async function failedCreateMessage(kube: KubePort, job: Job): Promise<string | undefined> {
  const uid = job.metadata.uid;
  if (!uid) return undefined;
  const events = await kube.list<CoreEvent & KubeObject>(Resources.event, { fieldSelector: `involvedObject.uid=${uid},reason=FailedCreate` });
  const newest = events.items
    .filter((e) => e.reason === 'FailedCreate' && e.involvedObject?.uid === uid)
    .sort((a, b) => (a.lastTimestamp ?? '').localeCompare(b.lastTimestamp ?? ''))
    .pop();
  return newest ? (newest.message ?? 'FailedCreate') : undefined;
}


/** What a finished step Job left: its verdict, the parsed result JSON or why there is none, its Failed reason. */
export interface JobEvidence {
  job: string;
  succeeded: boolean;
  /** The parsed termination message, when there was one. */
  result?: unknown;
  /** Why there is no result (no termination message, not JSON). */
  problem?: string;
  /** The Job's Failed condition (`DeadlineExceeded: ...`), when it failed. */
  failure?: string;
}

export async function jobEvidence(kube: KubePort, job: Job): Promise<JobEvidence> {
  const result = await readJobResult(kube, job);
  const name = job.metadata.name ?? '';
  if (result.state === 'running') return { job: name, succeeded: false, problem: 'job still running' };
  const failed = (job.status?.conditions ?? []).find((c) => c.type === 'Failed' && c.status === 'True');
  return {
    job: name,
    succeeded: result.succeeded,
    ...(result.result !== undefined ? { result: result.result } : {}),
    ...(result.problem ? { problem: result.problem } : {}),
    ...(failed ? { failure: clip([failed.reason, failed.message].filter(Boolean).join(': ') || 'Failed', SUMMARY_MAX, { oneLine: true }) } : {}),
  };
}
