import type { Catalog } from '../../runtime/catalog.ts';
import type { ModelRun } from '../../runtime/resources.ts';

import type { ModelControls } from '../../runtime/controls.ts';
import { isServingRun } from '../../runtime/modelrun.ts';
// Pure summaries written onto the Argo CD Application: the notebooks of the app and the models served.

export const MAX_FAILED_JOBS = 20;

export interface NotebookStatus {
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  lastUpdate: string;
  failedJobs: string[];
}

interface NvjSummaryInput {
  metadata?: { name?: string };
  status?: unknown;
}

/** One pass over the (paginated) list: counts, and the first failed names in list (name) order. */
export function summariseNotebooks(items: readonly NvjSummaryInput[], now: Date): NotebookStatus {
  let succeeded = 0;
  let failed = 0;
  const failedJobs: string[] = [];
  for (const item of items) {
    const phase = (item.status as { phase?: unknown } | undefined)?.phase;
    if (phase === 'Succeeded') succeeded++;
    else if (phase === 'Failed') {
      failed++;
      if (failedJobs.length < MAX_FAILED_JOBS) failedJobs.push(item.metadata?.name ?? '');
    }
  }
  // Anything not terminal (every in-progress phase, or none yet) is running.
  return { total: items.length, succeeded, failed, running: items.length - succeeded - failed, lastUpdate: now.toISOString(), failedJobs };
}

export interface ModelStatusEntry {
  servedRelease: string | null;
  trainedAt: string | null;
  deployedAt: string | null;
  ageSeconds: number | null;
  lastVerdict: string | null;
  lastRun: { name: string; phase: string } | null;
  /** Day-2 controls (docs/day2.md): who paused the model and why; which release is pinned and by whom. */
  paused: { by: string; at: string | null; reason: string | null } | null;
  pinned: { release: string; by: string } | null;
}
export type ModelStatus = Record<string, ModelStatusEntry>;

const time = (v: string | Date | undefined): number => (v === undefined ? Number.NEGATIVE_INFINITY : new Date(v).getTime());

/**
 * Per catalog model: the served release is the newest Succeeded run's promoted release (deployed at its
 * finishedAt, trained at its training step's end); the age counts from training. The last verdict is the
 * gate's on the newest run that reached the gate.
 */
export function summariseModels(catalog: Catalog, runs: readonly ModelRun[], now: Date, controls: ReadonlyMap<string, ModelControls> = new Map()): ModelStatus {
  const out: ModelStatus = {};
  for (const model of catalog.models) {
    const mine = runs.filter((r) => r.spec.model === model.name);
    const newest = <T>(list: T[], at: (r: T) => number): T | undefined =>
      list.reduce<T | undefined>((best, r) => (best === undefined || at(r) > at(best) ? r : best), undefined);
    const served = newest(mine.filter(isServingRun), (r) => time(r.status?.finishedAt));
    const judged = newest(mine.filter((r) => r.status?.gate?.verdict !== undefined), (r) => time(r.status?.steps?.gate?.finished ?? r.status?.startedAt ?? r.metadata.creationTimestamp));
    const last = newest(mine, (r) => time(r.metadata.creationTimestamp ?? r.status?.startedAt));
    // A manual rollback serves an older run's release: that run trained it.
    const trainedBy = served?.spec.trigger === 'manual-rollback' ? mine.find((r) => r.metadata.name === served.status?.release?.promoted) : served;
    const trainedAt = trainedBy?.status?.steps?.training?.finished ?? null;
    const c = controls.get(model.name);
    out[model.name] = {
      servedRelease: served ? (served.status?.release?.promoted ?? served.metadata.name ?? null) : null,
      trainedAt: trainedAt ? new Date(trainedAt).toISOString() : null,
      deployedAt: served?.status?.finishedAt ? new Date(served.status.finishedAt).toISOString() : null,
      ageSeconds: trainedAt ? Math.max(0, Math.round((now.getTime() - new Date(trainedAt).getTime()) / 1000)) : null,
      lastVerdict: judged?.status?.gate?.verdict ?? null,
      lastRun: last ? { name: last.metadata.name ?? '', phase: last.status?.phase ?? 'Pending' } : null,
      paused: c?.paused ? { by: c.paused.by, at: c.paused.at ?? null, reason: c.paused.reason ?? null } : null,
      pinned: c?.pinned ? { release: c.pinned.release, by: c.pinned.by } : null,
    };
  }
  return out;
}
