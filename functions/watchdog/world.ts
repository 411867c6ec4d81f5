import type { CatalogModel } from '../../runtime/catalog.ts';
import type { KubeObject, KubePort } from '../../runtime/kube.ts';
import { Annotations, KSERVE_ISVC_LABEL as ISVC_LABEL, Labels, MANAGER } from '../../runtime/labels.ts';
import { Resources, isTerminalPhase, type InferenceService, type Job, type ModelRun, type NotebookValidationJob, type Pod } from '../../runtime/resources.ts';

import type { JobFacts, NvjFacts, PodFacts, ReconcileWorld } from './reconcile.ts';

// The reconcile's reads: four paginated lists per tick whatever the number of runs (none while no run is in
// flight), so a tick costs O(unfinished runs) in memory and a bounded number of API calls.

const MANAGED = `${Labels.managedBy}=${MANAGER}`;

export async function readWorld(kube: KubePort, runs: readonly ModelRun[], models: ReadonlyMap<string, CatalogModel>, now: Date, graceMs: number): Promise<ReconcileWorld | undefined> {
  const unfinished = runs.filter((r) => !isTerminalPhase(r.status?.phase));
  const base = { runs, models, now, graceMs };
  if (unfinished.length === 0) return { ...base, nvjs: new Map(), jobs: new Map(), isvcs: new Map(), pods: [] };
  const [nvjs, jobs, isvcs, pods] = await Promise.all([
    kube.listAll<NotebookValidationJob & KubeObject>(Resources.notebookValidationJob, { labelSelector: MANAGED }),
    kube.listAll<Job & KubeObject>(Resources.job, { labelSelector: MANAGED }),
    kube.listAll<InferenceService & KubeObject>(Resources.inferenceService, {}),
    kube.listAll<Pod & KubeObject>(Resources.pod, { labelSelector: ISVC_LABEL }),
  ]);
  return {
    ...base,
    nvjs: new Map(nvjs.map((n) => [n.metadata?.name ?? '', nvjFacts(n)])),
    jobs: new Map(jobs.map((j) => [j.metadata?.name ?? '', jobFacts(j)])),
    isvcs: new Map(isvcs.map((i) => [i.metadata?.name ?? '', releaseOf(i)])),
    pods: pods.map(podFacts),
  };
}

/** client-node hands some timestamps over as Date objects, custom resources as strings. */
const iso = (v: unknown): string | undefined => (v instanceof Date ? v.toISOString() : typeof v === 'string' ? v : undefined);

function nvjFacts(nvj: NotebookValidationJob): NvjFacts {
  const status = nvj.status as { phase?: unknown; completionTime?: unknown } | undefined;
  const completionTime = iso(status?.completionTime);
  return { ...(typeof status?.phase === 'string' ? { phase: status.phase } : {}), ...(completionTime ? { completionTime } : {}) };
}

function jobFacts(job: Job): JobFacts {
  const conditions = (job.status?.conditions ?? []) as Array<{ type?: string; status?: string; lastTransitionTime?: unknown }>;
  const end = conditions.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  const doneAt = iso(job.status?.completionTime) ?? iso(end?.lastTransitionTime);
  const createdAt = iso(job.metadata?.creationTimestamp);
  return { done: end !== undefined, ...(doneAt ? { doneAt } : {}), ...(createdAt ? { createdAt } : {}) };
}

function releaseOf(isvc: InferenceService): { release?: string } {
  const release = (isvc.spec as { predictor?: { annotations?: Record<string, string> } } | undefined)?.predictor?.annotations?.[Annotations.modelRelease];
  return release ? { release } : {};
}

function podFacts(pod: Pod): PodFacts {
  const ready = (pod.status?.conditions ?? []).find((c) => c.type === 'Ready');
  const release = pod.metadata?.annotations?.[Annotations.modelRelease];
  const since = iso(ready?.lastTransitionTime);
  const createdAt = iso(pod.metadata?.creationTimestamp);
  return {
    ...(createdAt ? { createdAt } : {}),
    isvc: pod.metadata?.labels?.[ISVC_LABEL] ?? '',
    ...(release ? { release } : {}),
    ready: ready?.status === 'True',
    ...(since ? { readySince: since } : {}),
    deleting: pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
  };
}
